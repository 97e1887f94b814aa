// The export table and export management (nbd.h: export_add, export_remove, exports).
#include "target/nbd/exports.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "target/nbd/nbd.h"
#include "target/nbd/session.h"
#include "thread/thread.h"

namespace sluice::nbd {
namespace {

struct Table {
  std::mutex mu;
  std::vector<std::shared_ptr<Export>> exports;  // in the order added
};

Table& table() {
  static Table* t = new Table();  // never destroyed: reactors may look up during exit
  return *t;
}

// Hot-remove of the bdev: runs on whatever thread removed it, so it only unpublishes and
// asks the reactors to disconnect; it never waits.
void bdev_removed(const std::weak_ptr<Export>& weak) {
  std::shared_ptr<Export> e = weak.lock();
  if (!e) return;
  if (e->gone.exchange(true)) return;  // already removed as an export
  log::notice("nbd: bdev {} was removed: export {} goes, its clients are disconnected", e->bdev_name, e->name);
  (void)exports_table::take(e->name);
  Status st = disconnect_all(e->id);
  if (!st.ok()) log::warn("nbd: disconnecting export {}: {}", e->name, st.to_string());
}

}  // namespace

proto::ExportLimits Export::limits(uint32_t max_payload) const {
  proto::ExportLimits l;
  l.size_bytes = desc->geometry().size_bytes();
  l.block_size = desc->geometry().block_size;
  l.max_payload = max_payload;
  l.read_only = read_only;
  l.can_trim = desc->geometry().supports(bdev::IoType::unmap);
  l.can_write_zeroes = desc->geometry().supports(bdev::IoType::write_zeroes);
  return l;
}

namespace exports_table {

std::shared_ptr<Export> find(std::string_view name) {
  auto& t = table();
  std::lock_guard lock(t.mu);
  if (name.empty()) return t.exports.empty() ? nullptr : t.exports.front();
  for (auto& e : t.exports)
    if (e->name == name) return e;
  return nullptr;
}

std::vector<std::string> names() {
  auto& t = table();
  std::lock_guard lock(t.mu);
  std::vector<std::string> out;
  for (auto& e : t.exports) out.push_back(e->name);
  return out;
}

std::vector<std::shared_ptr<Export>> all() {
  auto& t = table();
  std::lock_guard lock(t.mu);
  return t.exports;
}

Status add(std::shared_ptr<Export> e) {
  auto& t = table();
  std::lock_guard lock(t.mu);
  for (auto& x : t.exports)
    if (x->name == e->name) return Status(Errc::exists, fmt::format("an export named '{}' already exists", e->name));
  t.exports.push_back(std::move(e));
  return Status::Ok();
}

std::shared_ptr<Export> take(std::string_view name) {
  auto& t = table();
  std::lock_guard lock(t.mu);
  auto it = std::find_if(t.exports.begin(), t.exports.end(), [&](auto& e) { return e->name == name; });
  if (it == t.exports.end()) return nullptr;
  auto e = *it;
  t.exports.erase(it);
  return e;
}

}  // namespace exports_table

Status disconnect_all(uint64_t id) {
  Status first;
  for (uint32_t r = 0; r < thread::reactor_count(); ++r) {
    Status st = thread::send_message(r, [id] { close_sessions(id); });
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

Status export_add(std::string_view name, std::string_view bdev_name, bool read_only) {
  if (name.empty() || name.size() > proto::kMaxNameLength)
    return Status(Errc::invalid_argument, fmt::format("export name must be 1..{} bytes", proto::kMaxNameLength));
  if (exports_table::find(name)) return Status(Errc::exists, fmt::format("an export named '{}' already exists", name));
  static std::atomic<uint64_t> next_id{1};
  auto e = std::make_shared<Export>();
  e->id = next_id.fetch_add(1);
  e->name = std::string(name);
  e->bdev_name = std::string(bdev_name);
  e->read_only = read_only;
  bdev::OpenOptions opts;
  opts.write = !read_only;
  std::weak_ptr<Export> weak = e;
  opts.on_remove = [weak] { bdev_removed(weak); };
  auto desc = bdev::open(bdev_name, opts);
  if (!desc.ok()) return desc.status();
  e->desc = std::move(desc.value());
  return exports_table::add(std::move(e));
}

Status export_remove(std::string_view name) {
  if (thread::current_reactor() != nullptr)
    return Status(Errc::invalid_argument, "nbd::export_remove waits for the reactors: call it from a control thread");
  std::shared_ptr<Export> e = exports_table::take(name);
  if (!e) return Status(Errc::not_found, fmt::format("no export named '{}'", name));
  e->gone.store(true);
  SLUICE_RETURN_IF_ERROR(disconnect_all(e->id));
  const auto deadline = std::chrono::steady_clock::now() + stop_timeout();
  while (e->connections.load() > 0) {
    if (std::chrono::steady_clock::now() >= deadline)
      return Status(Errc::aborted,
                    fmt::format("export '{}' removed; {} connection(s) still closing", name, e->connections.load()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status::Ok();
}

std::vector<ExportInfo> exports() {
  std::vector<ExportInfo> out;
  for (auto& e : exports_table::all()) out.push_back({e->name, e->bdev_name, e->read_only, e->connections.load()});
  return out;
}

}  // namespace sluice::nbd
