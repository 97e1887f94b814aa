#include "thread/registry.h"

#include <atomic>

#include <fmt/format.h>

#include "thread/reactor.h"

namespace sluice::thread {
namespace registry {
namespace {

struct Table {
  std::vector<Reactor*> reactors;
};
std::atomic<Table*> g_table{nullptr};

}  // namespace

bool install(const std::vector<Reactor*>& reactors) {
  auto* t = new Table{reactors};
  Table* expected = nullptr;
  if (g_table.compare_exchange_strong(expected, t, std::memory_order_acq_rel)) return true;
  delete t;
  return false;
}

void uninstall(bool keep_table) {
  Table* t = g_table.exchange(nullptr, std::memory_order_acq_rel);
  if (!keep_table) delete t;
}

Reactor* lookup(uint32_t id) {
  Table* t = g_table.load(std::memory_order_acquire);
  if (t == nullptr || id >= t->reactors.size()) return nullptr;
  return t->reactors[id];
}

uint32_t count() {
  Table* t = g_table.load(std::memory_order_acquire);
  return t == nullptr ? 0 : static_cast<uint32_t>(t->reactors.size());
}

Status no_reactor(uint32_t id) {
  return Status(Errc::not_found, fmt::format("no reactor {} ({} running)", id, count()));
}

}  // namespace registry

uint32_t reactor_count() { return registry::count(); }

Result<ReactorStats> reactor_stats(uint32_t reactor_id) {
  Reactor* r = registry::lookup(reactor_id);
  if (r == nullptr) return registry::no_reactor(reactor_id);
  return r->stats();
}

}  // namespace sluice::thread
