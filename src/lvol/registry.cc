// The process-wide table of loaded lvol stores, by store name.
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "lvol/store_impl.h"

namespace sluice::lvol {
namespace {

struct Stores {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<LvolStore>, std::less<>> by_name;
};

Stores& stores() {
  static Stores* s = new Stores();  // never destroyed: stores may unload during exit
  return *s;
}

}  // namespace

Status add_store(std::shared_ptr<LvolStore> store) {
  auto& s = stores();
  std::lock_guard lock(s.mu);
  auto [it, inserted] = s.by_name.try_emplace(store->name(), store);
  if (!inserted) return Status(Errc::exists, fmt::format("an lvol store named {} is already loaded", store->name()));
  return Status::Ok();
}

void remove_store(std::string_view name) {
  auto& s = stores();
  std::shared_ptr<LvolStore> gone;  // destroyed outside the lock
  std::lock_guard lock(s.mu);
  if (auto it = s.by_name.find(name); it != s.by_name.end()) {
    gone = std::move(it->second);
    s.by_name.erase(it);
  }
}

bool store_name_taken(std::string_view name) {
  auto& s = stores();
  std::lock_guard lock(s.mu);
  return s.by_name.contains(name);
}

std::shared_ptr<LvolStore> LvolStore::find(std::string_view store_name) {
  auto& s = stores();
  std::lock_guard lock(s.mu);
  auto it = s.by_name.find(store_name);
  return it == s.by_name.end() ? nullptr : it->second;
}

std::vector<std::string> LvolStore::list_stores() {
  auto& s = stores();
  std::lock_guard lock(s.mu);
  std::vector<std::string> out;
  for (auto& [name, store] : s.by_name) out.push_back(name);
  return out;
}

}  // namespace sluice::lvol
