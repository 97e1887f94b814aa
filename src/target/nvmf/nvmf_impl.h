// The NVMe-oF core's internals (src/target/nvmf only; not part of the API).
//
// Ownership by thread:
// - Target::State, Subsystem, Controller: the home reactor's alone. Queue pairs on other
//   reactors hold a Controller by shared_ptr only to keep it alive and hand it back in
//   messages; they never read or write it.
// - Namespace: made on the home reactor, then immutable; shared with the I/O queues, whose
//   channels to its bdev must be put back before the last reference closes the handle.
// - QueuePair, its Impl and NsChannels: the queue's reactor alone. A QueueLink names a
//   queue pair to the home reactor; its `qp` is read and cleared on the queue's reactor only,
//   so a message that arrives after the queue pair went finds nullptr.
#pragma once

#include <array>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "nvme/nvme_spec.h"
#include "target/nvmf/nvmf.h"

namespace sluice::nvmf {

namespace sp = nvme::spec;

inline constexpr uint8_t kAsyncEventRequestLimit = 4;  // AERL + 1
inline constexpr size_t kErrorLogEntries = 16;        // ELPE + 1
inline constexpr size_t kIdentifySize = 4096;
inline constexpr uint16_t kMaxCntlid = 0xffef;  // FFF0h.. are reserved

inline uint16_t generic_status(uint8_t sc, bool dnr = false) { return sp::make_status(sp::kSctGeneric, sc, dnr); }
inline uint16_t specific_status(uint8_t sc, bool dnr = true) {
  return sp::make_status(sp::kSctCommandSpecific, sc, dnr);
}

struct Namespace {
  uint32_t nsid = 0;
  std::string bdev_name;
  std::unique_ptr<bdev::BdevDesc> desc;
  bdev::Geometry geometry;
  std::array<uint8_t, 16> nguid{};
  std::array<uint8_t, 16> uuid{};
};

// NGUID and UUID from the bdev's name: the same device shows the same identity after a
// restart, which is what a host's multipath and udev names key on (namespace_ids.cc).
void derive_namespace_ids(Namespace& ns);

// One association: a host's admin queue and its I/O queues.
struct QueueLink {
  QueuePair* qp = nullptr;  // the queue's reactor only
  uint32_t reactor = 0;
};

struct Subsystem;

struct Controller {
  Subsystem* subsystem = nullptr;  // cleared when the subsystem goes
  uint16_t cntlid = 0;
  std::string hostnqn;
  std::array<uint8_t, 16> hostid{};
  bool discovery = false;
  // Registers (Property Get/Set).
  uint32_t cc = 0;
  uint32_t csts = 0;
  // Features.
  uint32_t async_event_config = 0;
  uint32_t kato_ms = 0;
  uint16_t io_queues_granted = 0;  // 0: Number of Queues never set (the maximum applies)
  bool volatile_write_cache = true;
  // Keep alive.
  uint64_t last_keep_alive_ms = 0;
  bool keep_alive_expired = false;
  // Asynchronous events: outstanding requests, and events waiting for one.
  std::vector<Request*> aers;
  std::deque<uint32_t> pending_events;
  bool ns_notice_masked = false;  // sent, and the changed namespace log not read since
  std::vector<uint32_t> changed_namespaces;
  // Error log, newest first.
  std::deque<sp::ErrorLogEntry> errors;
  uint64_t error_count = 0;
  // Queues by qid (0: the admin queue).
  std::vector<std::shared_ptr<QueueLink>> queues;
};

struct Subsystem {
  std::string nqn;
  std::string serial;
  std::string model;
  bool discovery = false;
  bool allow_any_host = false;
  std::vector<std::string> hosts;
  std::vector<Listener> listeners;
  std::vector<std::shared_ptr<Namespace>> namespaces;  // by NSID - 1; nullptr: inactive
  std::vector<std::shared_ptr<Controller>> controllers;
  uint16_t next_cntlid = 1;

  bool host_allowed(std::string_view hostnqn) const;
  Namespace* find_namespace(uint32_t nsid) const;
  std::shared_ptr<Controller> find_controller(uint16_t cntlid) const;
  // A cntlid no live controller of this subsystem has; 0 when all are taken.
  uint16_t allocate_cntlid();
};

struct Target::State : std::enable_shared_from_this<Target::State> {
  TargetOptions options;
  std::vector<std::shared_ptr<Subsystem>> subsystems;  // [0]: the discovery subsystem
  uint64_t discovery_generation = 0;  // GENCTR: bumped by every change the log shows

  uint64_t now_ms() const;
  bool on_home() const;
  Subsystem* find(std::string_view nqn) const;

  // A namespace appeared or went (ns: nullptr): raise the events on every controller and
  // re-point the I/O queues' channel records (subsystem.cc).
  void namespace_changed(Subsystem& subsystem, uint32_t nsid, const std::shared_ptr<Namespace>& ns);
  // Ends an association: AERs complete aborted, the other queues are closed (controller.cc).
  void end_association(const std::shared_ptr<Controller>& ctrlr);
  // A queue pair closed (controller.cc).
  void queue_closed(const std::shared_ptr<Controller>& ctrlr, uint16_t qid);
};

namespace detail {
// A queue pair's channel to one namespace's bdev, got at its first I/O there. When the
// namespace goes it is detached, and put back once its requests have completed.
struct NsChannel {
  std::shared_ptr<Namespace> ns;
  bdev::BdevChannel* ch = nullptr;
  uint32_t in_flight = 0;
  bool detached = false;
  bool releasing = false;  // the message that puts the channel back is on its way
};
}  // namespace detail

// What the home reactor answers a Connect with; written there while the queue pair is
// `connecting`, read on the queue's reactor when the completion arrives.
struct ConnectResult {
  std::shared_ptr<Controller> ctrlr;
  std::vector<std::shared_ptr<Namespace>> namespaces;
  uint16_t qid = 0;
  uint16_t cntlid = 0;
  bool sq_flow_control_disabled = false;
  std::string subnqn;
};

struct QueuePair::Impl {
  Impl(QueuePair& qp, std::shared_ptr<Target::State> target);

  QueuePair& qp;
  std::shared_ptr<Target::State> target;  // kept alive while the queue pair lives
  std::shared_ptr<QueueLink> link;
  std::shared_ptr<Controller> ctrlr;  // kept alive for messages to the home reactor
  std::vector<std::unique_ptr<detail::NsChannel>> namespaces;  // by NSID - 1
  std::vector<std::unique_ptr<detail::NsChannel>> draining;
  ConnectResult connect;
  void (*closed_fn)(void*) = nullptr;
  void* closed_arg = nullptr;

  // ---- the queue's reactor ----
  static Impl& of(Request* req) { return *req->state.qp->impl_; }
  // Runs `req` on the home reactor (a message unless this is it), completes back here.
  void to_home(Request* req);
  // Finishes `req` on its queue's reactor: done() runs there.
  static void complete(Request* req);
  void set_namespace(uint32_t nsid, std::shared_ptr<Namespace> ns);
  void detach(std::unique_ptr<detail::NsChannel> nc);
  // Puts a detached record's channel back once its requests are done: by a message to this
  // reactor, since it may be called inside that channel's completion callback.
  void release_if_drained(detail::NsChannel* nc);
  void release_now(detail::NsChannel* nc);
  void close_locally();
  void closed_by_target();
  void execute_io(Request* req);                 // io.cc
  void disconnect(Request* req);                 // fabrics.cc

  // ---- the home reactor ----
  // Completes `req` from the home reactor: back to the queue's reactor by message.
  static void finish(Request* req, uint16_t status, uint32_t dw0 = 0);
};

// ---- The home reactor's command handlers --------------------------------------------------
// Each ends in QueuePair::Impl::finish(req, ...), now or later.
void execute_fabrics(Target::State& target, Request* req);  // fabrics.cc
void execute_admin(Target::State& target, Request* req);    // admin.cc
void identify(Target::State& target, Controller& ctrlr, Request* req);      // identify.cc
void get_log_page(Target::State& target, Controller& ctrlr, Request* req);  // log_pages.cc
// The discovery log page for `hostnqn`, whole (log_pages.cc).
std::vector<uint8_t> discovery_log(const Target::State& target, std::string_view hostnqn);
// Controller events (controller.cc).
void raise_event(Controller& ctrlr, uint32_t dw0);
void record_error(Controller& ctrlr, const sp::Sqe& sqe, uint16_t status, uint16_t sqid);

// Copies `n` bytes of `src` into the request's data (as much as it holds).
void copy_to_host(Request* req, const void* src, size_t n);

}  // namespace sluice::nvmf
