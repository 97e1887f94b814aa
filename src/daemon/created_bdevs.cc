#include "daemon/created_bdevs.h"

#include <algorithm>
#include <mutex>

#include "bdev/bdev.h"
#include "daemon/daemon.h"

namespace sluice::daemon {
namespace {

struct Call {
  std::vector<std::string> names;
  std::string method;
  rpc::Json params;
};

// The RPC thread is the only writer; save_config and shutdown may read from others.
struct Created {
  std::mutex mu;
  std::vector<Call> calls;
  std::vector<Examiner> examiners;
};
Created& created() {
  static auto* c = new Created();  // never destroyed: usable during exit
  return *c;
}

}  // namespace

void remember(std::vector<std::string> names, std::string method, rpc::Json params) {
  auto& c = created();
  std::lock_guard lock(c.mu);
  c.calls.push_back({std::move(names), std::move(method), std::move(params)});
}

void forget(std::string_view name) {
  auto& c = created();
  std::lock_guard lock(c.mu);
  for (Call& call : c.calls) std::erase(call.names, name);
  std::erase_if(c.calls, [](const Call& call) { return call.names.empty(); });
}

rpc::Json created_calls() {
  auto& c = created();
  std::lock_guard lock(c.mu);
  rpc::Json out = rpc::Json::array();
  for (const Call& call : c.calls)
    if (std::any_of(call.names.begin(), call.names.end(), [](const std::string& n) { return bdev::find(n) != nullptr; }))
      out.push_back({{"method", call.method}, {"params", call.params}});
  return out;
}

std::vector<std::string> created_names() {
  auto& c = created();
  std::lock_guard lock(c.mu);
  std::vector<std::string> out;
  for (const Call& call : c.calls) out.insert(out.end(), call.names.begin(), call.names.end());
  return out;
}

void forget_all() {
  auto& c = created();
  std::lock_guard lock(c.mu);
  c.calls.clear();
}

void add_examiner(Examiner examiner) {
  auto& c = created();
  std::lock_guard lock(c.mu);
  c.examiners.push_back(std::move(examiner));
}

void examine(const std::string& bdev_name) {
  std::vector<Examiner> examiners;
  {
    auto& c = created();
    std::lock_guard lock(c.mu);
    examiners = c.examiners;
  }
  for (const Examiner& e : examiners) e(bdev_name);
}

}  // namespace sluice::daemon
