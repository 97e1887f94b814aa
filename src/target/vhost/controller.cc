// vhost-user controllers: one listening Unix socket each, one front end at a time (vhost.h).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "bdev/bdev.h"
#include "net/net.h"
#include "target/vhost/blk_device.h"
#include "target/vhost/connection.h"
#include "target/vhost/scsi_device.h"
#include "target/vhost/scsi_targets.h"
#include "target/vhost/vhost.h"
#include "thread/thread.h"

namespace sluice::vhost {
namespace {

constexpr std::chrono::milliseconds kWaitForReactors{5000};
constexpr uint32_t kAcceptReactor = 0;
constexpr size_t kMaxNameLength = 64;
constexpr uint32_t kMaxCoalescingUs = 1000000;

struct Controller {
  BlkControllerOptions options;  // name, num_queues, coalescing; bdev and read_only for blk
  ControllerType type = ControllerType::blk;
  std::string socket;
  std::unique_ptr<bdev::BdevDesc> desc;     // blk
  std::shared_ptr<ScsiTargets> targets;     // scsi; its live device shares them
  std::unique_ptr<net::Listener> listener;
  // The live connection (at most one) and its reactor. `mu` orders a connection arriving on
  // a reactor against the controller's deletion (control events, never the data path).
  std::mutex mu;
  Connection* connection = nullptr;
  BlkDevice* device = nullptr;  // the connection's (blk); read on its reactor only
  ScsiDevice* scsi = nullptr;   // the connection's (scsi); read on its reactor only
  uint32_t connection_reactor = 0;
  bool deleting = false;
  Coalescing coalescing;  // under mu: adopt() reads it on a reactor
  std::atomic<bool> connected{false};
};

struct Registry {
  std::mutex mu;  // control path only
  std::string socket_dir = ".";
  std::vector<std::shared_ptr<Controller>> controllers;
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: reactors may run during exit
  return *r;
}

// The controller named `name`, or end(). Registry::mu held.
std::vector<std::shared_ptr<Controller>>::iterator find_locked(Registry& r, std::string_view name) {
  return std::find_if(r.controllers.begin(), r.controllers.end(), [&](const auto& c) { return c->options.name == name; });
}

Status not_on_reactor(const char* what) {
  if (thread::current_reactor() == nullptr) return Status::Ok();
  return Status(Errc::invalid_argument, fmt::format("vhost::{} waits for the reactors: call it from a control thread", what));
}

// On the reactor the listener handed the socket to.
void adopt(const std::shared_ptr<Controller>& c, int fd) {
  UniqueFd owned(fd);
  std::lock_guard lock(c->mu);
  if (c->deleting) return;
  if (c->connected.load()) {
    log::warn("vhost {}: refused a second front end (one at a time)", c->options.name);
    return;
  }
  std::unique_ptr<Device> device;
  BlkDevice* blk = nullptr;
  ScsiDevice* scsi = nullptr;
  if (c->type == ControllerType::blk) {
    auto d = std::make_unique<BlkDevice>(*c->desc, BlkOptions{c->options.num_queues, c->options.read_only, {}, c->coalescing});
    blk = d.get();
    device = std::move(d);
  } else {
    auto d = std::make_unique<ScsiDevice>(c->targets, ScsiOptions{c->options.num_queues, c->coalescing});
    scsi = d.get();
    device = std::move(d);
  }
  auto conn = start_connection(std::move(owned), std::move(device), c->options.name, [c] {
    std::lock_guard gone_lock(c->mu);
    c->connection = nullptr;
    c->device = nullptr;
    c->scsi = nullptr;
    c->connected.store(false);
  });
  if (!conn.ok()) {
    log::error("vhost {}: cannot serve the new connection: {}", c->options.name, conn.status().to_string());
    return;
  }
  c->connection = conn.value();
  c->device = blk;
  c->scsi = scsi;
  c->connection_reactor = thread::reactor_id(thread::current_reactor());
  c->connected.store(true);
  log::notice("vhost {}: front end connected", c->options.name);
}

}  // namespace

Status set_socket_dir(std::string_view dir) {
  std::error_code ec;
  if (dir.empty() || !std::filesystem::is_directory(std::string(dir), ec))
    return Status(Errc::not_found, fmt::format("vhost socket directory '{}' is not a directory", dir));
  std::lock_guard lock(registry().mu);
  registry().socket_dir = std::string(dir);
  return Status::Ok();
}

std::string socket_dir() {
  std::lock_guard lock(registry().mu);
  return registry().socket_dir;
}

namespace {

// Checks a new controller's options and makes it listen; Registry::mu held. `open` opens
// what it serves (the bdev, the target slots).
Status create_controller(const BlkControllerOptions& options, ControllerType type,
                         const std::function<Status(Controller&)>& open) {
  if (thread::reactor_count() == 0) return Status(Errc::invalid_argument, "vhost: no App is running");
  const std::string& name = options.name;
  if (name.empty() || name.size() > kMaxNameLength || name.find('/') != std::string::npos || name == "." || name == "..")
    return Status(Errc::invalid_argument, fmt::format("vhost controller name '{}': 1 to {} characters, no '/'", name, kMaxNameLength));
  const uint32_t max_queues = type == ControllerType::blk ? 64 : 64 - 2;  // scsi: control and event queues too
  if (options.num_queues == 0 || options.num_queues > max_queues)
    return Status(Errc::invalid_argument, fmt::format("vhost controller {}: {} queues (1 to {})", name, options.num_queues, max_queues));
  Registry& r = registry();
  if (find_locked(r, name) != r.controllers.end()) return Status(Errc::exists, fmt::format("vhost controller {} exists", name));
  if (options.coalescing.delay_base_us > kMaxCoalescingUs)
    return Status(Errc::invalid_argument, fmt::format("vhost controller {}: delay_base_us {} (at most {})", name,
                                                      options.coalescing.delay_base_us, kMaxCoalescingUs));
  auto c = std::make_shared<Controller>();
  c->options = options;
  c->type = type;
  c->coalescing = options.coalescing;
  c->socket = r.socket_dir + "/" + name;
  SLUICE_RETURN_IF_ERROR(open(*c));
  auto listener = net::Listener::bind(net::ListenAddress::unix_socket(c->socket));
  if (!listener.ok()) return listener.status();
  net::Listener* l = listener.value().get();
  std::weak_ptr<Controller> weak = c;
  Status st = thread::call_and_wait(kAcceptReactor, [l, weak] {
    return l->start([weak](int fd, std::string) {
      if (auto ctrl = weak.lock()) {
        adopt(ctrl, fd);
      } else {
        ::close(fd);  // deleted meanwhile
      }
    }, /*spin_for_peer=*/false);  // a front end connects once: not worth the idle grace
  }, kWaitForReactors);
  if (!st.ok()) {
    if (st.code() == Errc::aborted) (void)listener.value().release();  // may still be watched
    return st;
  }
  c->listener = std::move(listener.value());
  r.controllers.push_back(c);
  return Status::Ok();
}

// The scsi controller `name`; Registry::mu held.
Result<std::shared_ptr<Controller>> find_scsi_locked(Registry& r, std::string_view name) {
  auto it = find_locked(r, name);
  if (it == r.controllers.end()) return Status(Errc::not_found, fmt::format("no vhost controller {}", name));
  if ((*it)->type != ControllerType::scsi)
    return Status(Errc::invalid_argument, fmt::format("vhost controller {} is not a vhost-scsi controller", name));
  return *it;
}

// A sleeping reactor runs its pollers once a message wakes it: the queues then see a
// changed target table.
void wake_reactors() {
  for (uint32_t i = 0; i < thread::reactor_count(); ++i) (void)thread::send_message(i, [](void*) {}, nullptr);
}

}  // namespace

Status create_blk_controller(const BlkControllerOptions& options) {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("create_blk_controller"));
  std::lock_guard lock(registry().mu);
  SLUICE_RETURN_IF_ERROR(create_controller(options, ControllerType::blk, [&](Controller& c) -> Status {
    auto desc = bdev::open(options.bdev, bdev::OpenOptions{!options.read_only, bdev::Claim::shared, {}});
    if (!desc.ok()) return desc.status();
    c.desc = std::move(desc.value());
    return Status::Ok();
  }));
  log::notice("vhost {}: serving bdev {} on {}", options.name, options.bdev, registry().controllers.back()->socket);
  return Status::Ok();
}

Status create_scsi_controller(const ScsiControllerOptions& options) {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("create_scsi_controller"));
  std::lock_guard lock(registry().mu);
  BlkControllerOptions o;
  o.name = options.name;
  o.num_queues = options.num_queues;
  o.coalescing = options.coalescing;
  SLUICE_RETURN_IF_ERROR(create_controller(o, ControllerType::scsi, [&](Controller& c) {
    c.targets = std::make_shared<ScsiTargets>(options.name, wake_reactors);
    return Status::Ok();
  }));
  log::notice("vhost {}: a vhost-scsi controller on {}", options.name, registry().controllers.back()->socket);
  return Status::Ok();
}

Result<uint32_t> scsi_controller_add_target(std::string_view name, int64_t target, std::string_view bdev) {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("scsi_controller_add_target"));
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto c = find_scsi_locked(r, name);
  if (!c.ok()) return c.status();
  auto slot = (*c)->targets->add(target, bdev);
  if (!slot.ok()) return slot.status();
  wake_reactors();
  log::notice("vhost {}: target {} serves bdev {}", name, *slot, bdev);
  return *slot;
}

Status scsi_controller_remove_target(std::string_view name, int64_t target) {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("scsi_controller_remove_target"));
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto c = find_scsi_locked(r, name);
  if (!c.ok()) return c.status();
  auto gone = (*c)->targets->remove(target);
  if (!gone.ok()) return gone.status();
  wake_reactors();
  // The queues let go of it once its tasks there finished; the last one destroys it.
  const auto deadline = std::chrono::steady_clock::now() + kWaitForReactors;
  while (!gone->expired()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return Status(Errc::aborted, fmt::format("vhost {}: target {} still has tasks in flight", name, target));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  log::notice("vhost {}: target {} removed", name, target);
  return Status::Ok();
}

Status delete_controller(std::string_view name) {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("delete_controller"));
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = find_locked(r, name);
  if (it == r.controllers.end()) return Status(Errc::not_found, fmt::format("no vhost controller {}", name));
  std::shared_ptr<Controller> c = *it;
  bool connected;
  uint32_t reactor;
  {
    std::lock_guard clock(c->mu);
    c->deleting = true;  // from here no connection is adopted
    connected = c->connected.load();
    reactor = c->connection_reactor;
  }
  // A second call after one that timed out finds the listener already gone.
  Status st;
  if (net::Listener* l = c->listener.get()) {
    st = thread::call_and_wait(kAcceptReactor, [l] {
      l->stop();
      return Status::Ok();
    }, kWaitForReactors);
    if (!st.ok()) return st;
    c->listener.reset();
  }
  if (connected) {
    // The connection's reactor closes it; in-flight requests complete before it goes.
    st = thread::call_and_wait(reactor, [c] {
      std::lock_guard clock(c->mu);
      if (c->connection != nullptr) close_connection(c->connection, "controller deleted");
      return Status::Ok();
    }, kWaitForReactors);
    if (!st.ok()) return st;
    const auto deadline = std::chrono::steady_clock::now() + kWaitForReactors;
    while (c->connected.load()) {
      if (std::chrono::steady_clock::now() >= deadline)
        return Status(Errc::aborted, fmt::format("vhost {}: the connection is still closing", name));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  c->desc.reset();
  c->targets.reset();
  r.controllers.erase(it);
  log::notice("vhost {}: deleted", name);
  return Status::Ok();
}

Status set_coalescing(std::string_view name, const Coalescing& coalescing) {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("set_coalescing"));
  if (coalescing.delay_base_us > kMaxCoalescingUs)
    return Status(Errc::invalid_argument, fmt::format("delay_base_us {} (at most {})", coalescing.delay_base_us, kMaxCoalescingUs));
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = find_locked(r, name);
  if (it == r.controllers.end()) return Status(Errc::not_found, fmt::format("no vhost controller {}", name));
  std::shared_ptr<Controller> c = *it;
  std::unique_lock ctrl_lock(c->mu);
  c->coalescing = coalescing;  // for connections to come
  const uint32_t reactor = c->connection_reactor;
  const bool connected = c->connected.load();
  ctrl_lock.unlock();
  if (!connected) return Status::Ok();
  // The live connection's device belongs to its reactor.
  return thread::call_and_wait(reactor, [c, coalescing] {
    std::lock_guard clock(c->mu);
    if (c->device != nullptr) c->device->set_coalescing(coalescing);
    if (c->scsi != nullptr) c->scsi->set_coalescing(coalescing);
    return Status::Ok();
  }, kWaitForReactors);
}

std::vector<ControllerInfo> controllers() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<ControllerInfo> out;
  for (const auto& c : r.controllers) {
    ControllerInfo info;
    info.name = c->options.name;
    info.socket = c->socket;
    info.type = c->type;
    info.num_queues = c->options.num_queues;
    info.connected = c->connected.load();
    if (c->type == ControllerType::blk) {
      info.bdev = c->options.bdev;
      info.read_only = c->options.read_only;
    } else {
      for (auto& [id, bdev] : c->targets->list()) info.targets.push_back({id, bdev});
    }
    // The counters belong to the connection's reactor: read them there (control path).
    uint32_t reactor;
    {
      std::lock_guard clock(c->mu);
      reactor = c->connection_reactor;
      info.coalescing = c->coalescing;
    }
    if (info.connected && thread::current_reactor() == nullptr) {
      auto stats = std::make_shared<BlkStats>();  // outlives a reactor that answers too late
      Status st = thread::call_and_wait(reactor, [c, stats] {
        std::lock_guard clock(c->mu);
        if (c->device != nullptr) *stats = c->device->stats();
        if (c->scsi != nullptr) *stats = c->scsi->stats();
        return Status::Ok();
      }, kWaitForReactors);
      if (st.ok()) info.stats = *stats;
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace sluice::vhost
