// vhost-user controllers: one listening Unix socket each, one front end at a time (vhost.h).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "bdev/bdev.h"
#include "net/net.h"
#include "target/vhost/blk_device.h"
#include "target/vhost/connection.h"
#include "target/vhost/vhost.h"
#include "thread/thread.h"

namespace sluice::vhost {
namespace {

constexpr std::chrono::milliseconds kWaitForReactors{5000};
constexpr uint32_t kAcceptReactor = 0;
constexpr size_t kMaxNameLength = 64;
constexpr uint32_t kMaxCoalescingUs = 1000000;

struct Controller {
  BlkControllerOptions options;
  std::string socket;
  std::unique_ptr<bdev::BdevDesc> desc;
  std::unique_ptr<net::Listener> listener;
  // The live connection (at most one) and its reactor. `mu` orders a connection arriving on
  // a reactor against the controller's deletion (control events, never the data path).
  std::mutex mu;
  Connection* connection = nullptr;
  BlkDevice* device = nullptr;  // the connection's; read on its reactor only
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
  auto device = std::make_unique<BlkDevice>(
      *c->desc, BlkOptions{c->options.num_queues, c->options.read_only, {}, c->coalescing});
  BlkDevice* dev = device.get();
  auto conn = start_connection(std::move(owned), std::move(device), c->options.name, [c] {
    std::lock_guard gone_lock(c->mu);
    c->connection = nullptr;
    c->device = nullptr;
    c->connected.store(false);
  });
  if (!conn.ok()) {
    log::error("vhost {}: cannot serve the new connection: {}", c->options.name, conn.status().to_string());
    return;
  }
  c->connection = conn.value();
  c->device = dev;
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

Status create_blk_controller(const BlkControllerOptions& options) {
  SLUICE_RETURN_IF_ERROR(not_on_reactor("create_blk_controller"));
  if (thread::reactor_count() == 0) return Status(Errc::invalid_argument, "vhost: no App is running");
  const std::string& name = options.name;
  if (name.empty() || name.size() > kMaxNameLength || name.find('/') != std::string::npos || name == "." || name == "..")
    return Status(Errc::invalid_argument, fmt::format("vhost controller name '{}': 1 to {} characters, no '/'", name, kMaxNameLength));
  if (options.num_queues == 0 || options.num_queues > 64)
    return Status(Errc::invalid_argument, fmt::format("vhost controller {}: {} queues (1 to 64)", name, options.num_queues));
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  if (find_locked(r, name) != r.controllers.end()) return Status(Errc::exists, fmt::format("vhost controller {} exists", name));
  if (options.coalescing.delay_base_us > kMaxCoalescingUs)
    return Status(Errc::invalid_argument, fmt::format("vhost controller {}: delay_base_us {} (at most {})", name,
                                                      options.coalescing.delay_base_us, kMaxCoalescingUs));
  auto c = std::make_shared<Controller>();
  c->options = options;
  c->coalescing = options.coalescing;
  c->socket = r.socket_dir + "/" + name;
  auto desc = bdev::open(options.bdev, bdev::OpenOptions{!options.read_only, bdev::Claim::shared, {}});
  if (!desc.ok()) return desc.status();
  c->desc = std::move(desc.value());
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
    });
  }, kWaitForReactors);
  if (!st.ok()) {
    if (st.code() == Errc::aborted) (void)listener.value().release();  // may still be watched
    return st;
  }
  c->listener = std::move(listener.value());
  r.controllers.push_back(c);
  log::notice("vhost {}: serving bdev {} on {}", name, options.bdev, c->socket);
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
    return Status::Ok();
  }, kWaitForReactors);
}

std::vector<ControllerInfo> controllers() {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<ControllerInfo> out;
  for (const auto& c : r.controllers) {
    ControllerInfo info{c->options.name, c->socket, c->options.bdev, c->options.num_queues,
                        c->options.read_only, {}, c->connected.load(), {}};
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
        return Status::Ok();
      }, kWaitForReactors);
      if (st.ok()) info.stats = *stats;
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace sluice::vhost
