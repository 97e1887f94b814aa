// The NVMe-oF target's transport-neutral core: subsystems, namespaces, controllers and the
// commands a host sends over any fabric. A transport (TCP, later) moves capsules; this layer
// executes them.
//
//   nvmf::Target target({.home_reactor = 0});                  // on reactor 0
//   target.add_subsystem({.nqn = "nqn.2026-12.io.sluice:disk", .serial = "SL0001",
//                         .allow_any_host = true});
//   target.add_namespace("nqn.2026-12.io.sluice:disk", {.bdev = "malloc0"});
//   target.add_listener("nqn.2026-12.io.sluice:disk", {.traddr = "127.0.0.1", .trsvcid = "4420"});
//
//   // The transport, on the reactor that owns a connection:
//   nvmf::QueuePair qp(target);                // one per connection (admin or I/O queue)
//   req->sqe = ...; req->data = buf; req->length = n; req->done = on_done; req->ctx = conn;
//   qp.execute(req);                           // on_done(req) later, on this reactor
//   ...
//   qp.close();                                // the connection went: ends the association
//   // once qp.in_flight() == 0: destroy qp
//
// Threads (docs/design.md, "Serving devices"): the Target's state (subsystems, namespaces,
// controllers, their registers, features, events and logs) belongs to its home reactor.
// The control-path methods below run there, and so do every fabrics and admin command: a
// queue pair on another reactor hands them over by message and gets the completion back by
// message. I/O commands never leave the queue pair's reactor: each I/O queue opens its own
// channel to each namespace's bdev, so the data path takes no lock and sends no message.
// Namespace changes reach the I/O queues by message from the home reactor.
//
// Requests: the transport owns them (a per-connection pool) and their data buffers (DMA
// memory from env::dma_alloc, which meets every bdev's alignment: reads and writes go
// straight to the bdev; for a write, the host's data already received; for a read, the
// target fills `length` bytes). Nothing here allocates per I/O except a Compare's read-back buffer (from
// the DMA pool) and the message that logs a failed I/O in its controller's error log.
// done(req) always runs on the queue pair's reactor, possibly inside execute().
//
// Errors go to the host as NVMe statuses in req->cqe; nothing here closes a connection.
// The transport closes one when disconnected() turns true (a Disconnect completed, or the
// association ended: admin queue closed, subsystem removed), when check_keep_alive() names
// its controller, or when the host misbehaves at the transport level.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "bdev/bdev.h"
#include "nvme/nvme_spec.h"

namespace sluice::nvmf {

inline constexpr size_t kMaxNqnLength = 223;  // bytes, without the terminating NUL

// True for a well-formed NQN: "nqn.YYYY-MM.reverse.domain[:anything]" or
// "nqn.2014-08.org.nvmexpress:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", at most 223 bytes.
Status validate_nqn(std::string_view nqn);

// ---- Requests -------------------------------------------------------------------------------

// Which way a command's data moves, from its opcode (fabrics: its FCTYPE). The transport
// needs it to know whether to receive data before execute() or send it after done().
enum class Xfer : uint8_t { none, host_to_controller, controller_to_host, bidirectional };
Xfer transfer_direction(const nvme::spec::Sqe& sqe);

struct Request;
using RequestDone = void (*)(Request* req);

class QueuePair;
struct Controller;

namespace detail {
struct NsChannel;

// The core's per-request state. The transport leaves it alone.
struct RequestState {
  QueuePair* qp = nullptr;
  Controller* ctrlr = nullptr;  // admin: the queue's controller, for the home reactor
  NsChannel* ns = nullptr;    // I/O: this queue's channel to the namespace (io.cc)
  void* compare_buf = nullptr;
  uint32_t pending = 0;       // bdev requests still out (Dataset Management ranges)
  uint16_t status = 0;        // the first failure among them
  uint16_t step = 0;          // a multi-step command's progress (write then flush, read then compare)
  bdev::IoWaitEntry wait;     // queued for room on a busy channel
};
}  // namespace detail

struct Request {
  nvme::spec::Sqe sqe{};
  nvme::spec::Cqe cqe{};     // filled before done(): dw0, dw1, cid, status without the phase bit
                             // (sqhd, sqid: the transport's)
  void* data = nullptr;      // the command's data, `length` bytes
  uint32_t length = 0;
  RequestDone done = nullptr;  // required
  void* ctx = nullptr;         // the transport's
  detail::RequestState state;
};

// ---- The target ------------------------------------------------------------------------------

enum class AddressFamily : uint8_t { ipv4 = nvme::spec::discovery::kAdrfamIpv4, ipv6 = nvme::spec::discovery::kAdrfamIpv6 };

// Where a subsystem can be reached: only data here (the transport binds it).
struct Listener {
  uint8_t trtype = nvme::spec::discovery::kTrtypeTcp;
  AddressFamily adrfam = AddressFamily::ipv4;
  std::string traddr;   // "127.0.0.1"
  std::string trsvcid;  // "4420"
  bool operator==(const Listener&) const = default;
};

struct TargetOptions {
  uint32_t home_reactor = 0;
  uint16_t max_queue_depth = 128;     // CAP.MQES + 1 and MAXCMD
  uint16_t max_io_queues = 64;        // per controller
  uint32_t max_io_bytes = 128 << 10;  // MDTS (a power of two times 4 KiB)
  uint32_t in_capsule_data_bytes = 8192;  // IOCCSZ = 4 + this / 16
  uint32_t sgls = nvme::spec::idc::kSglsSupported | nvme::spec::idc::kSglsOffset;
  // Milliseconds on a monotonic clock: Keep Alive and Connect record it. Tests inject theirs.
  std::function<uint64_t()> now_ms;
};

struct SubsystemOptions {
  std::string nqn;
  std::string serial = "SLUICE0000000000";  // up to 20 ASCII characters
  std::string model = "Sluice NVMe-oF";     // up to 40
  bool allow_any_host = false;
  uint32_t max_namespaces = 32;
};

struct NamespaceOptions {
  std::string bdev;
  uint32_t nsid = 0;  // 0: the lowest free
};

// A subsystem as the control path shows it (nvmf_get_subsystems, save_config).
struct SubsystemInfo {
  std::string nqn;
  bool discovery = false;
  std::string serial;
  std::string model;
  bool allow_any_host = false;
  uint32_t max_namespaces = 0;
  std::vector<std::string> hosts;
  std::vector<Listener> listeners;
  struct Ns {
    uint32_t nsid = 0;
    std::string bdev;
  };
  std::vector<Ns> namespaces;  // active ones, by NSID
};

struct ControllerInfo {
  std::string subnqn;
  std::string hostnqn;
  uint16_t cntlid = 0;
};

class Target {
 public:
  explicit Target(TargetOptions options = {});
  // On the home reactor, after every QueuePair on it is gone.
  ~Target();
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  const TargetOptions& options() const;
  // The clock Connect and Keep Alive record (TargetOptions::now_ms, else a monotonic one).
  uint64_t now_ms() const;

  // ---- Control path: on the home reactor only (elsewhere Errc::invalid_argument) ----
  Status add_subsystem(const SubsystemOptions& options);
  // Its controllers go with it (their queues fail every later command).
  Status remove_subsystem(std::string_view nqn);
  Status set_allow_any_host(std::string_view nqn, bool allow);
  Status add_host(std::string_view nqn, std::string_view hostnqn);
  Status remove_host(std::string_view nqn, std::string_view hostnqn);
  Status add_listener(std::string_view nqn, const Listener& listener);
  Status remove_listener(std::string_view nqn, const Listener& listener);
  // Opens the bdev and returns the NSID. Errc::exists for a taken NSID, Errc::no_space for
  // a full subsystem, Errc::not_found for no such bdev or subsystem.
  Result<uint32_t> add_namespace(std::string_view nqn, const NamespaceOptions& options);
  // The namespace goes from every controller (a Namespace Attribute Changed event on each);
  // I/O to it fails. A hot-removed bdev takes this path by itself.
  Status remove_namespace(std::string_view nqn, uint32_t nsid);
  std::vector<std::string> subsystems() const;
  // Errc::not_found for no such subsystem.
  Result<SubsystemInfo> describe(std::string_view nqn) const;
  std::vector<ControllerInfo> controllers(std::string_view nqn) const;

  // Controllers whose keep-alive timeout passed at `now_ms` without a Keep Alive (or
  // another admin command). Each is marked failed (CSTS.CFS) and reported once: the
  // transport closes its queue pairs' connections (QueuePair::subsystem_nqn()/cntlid()).
  std::vector<ControllerInfo> check_keep_alive(uint64_t now_ms);

  struct State;  // (internal)
  const std::shared_ptr<State>& state() const { return state_; }

 private:
  std::shared_ptr<State> state_;
};

// ---- Queue pairs -----------------------------------------------------------------------------

// One NVMe-oF queue (a transport connection). Lives on the reactor that created it; the
// first command must be a Connect.
class QueuePair {
 public:
  explicit QueuePair(Target& target);
  // Only with in_flight() == 0 (after close(), outstanding AERs come back aborted), and not
  // inside a done() callback (which may run inside a bdev channel's poll): from a message,
  // as the NBD session frees itself.
  ~QueuePair();
  QueuePair(const QueuePair&) = delete;
  QueuePair& operator=(const QueuePair&) = delete;

  // Runs `req`; req->done(req) follows on this reactor.
  void execute(Request* req);
  // The connection is going: the admin queue ends its controller's association (its AERs
  // complete as aborted), an I/O queue leaves its controller; later commands fail.
  void close();

  uint32_t in_flight() const { return in_flight_; }
  bool connected() const { return state_ == Connection::connected; }
  uint16_t qid() const { return qid_; }
  uint16_t cntlid() const { return cntlid_; }
  const std::string& subsystem_nqn() const { return subnqn_; }
  // The host disabled SQ flow control when it connected this queue (Connect CATTR).
  bool sq_flow_control_disabled() const { return sq_flow_control_disabled_; }
  // Closed: by a Disconnect, close(), or the end of its association (the admin queue closed,
  // the subsystem removed). The transport closes the connection once its replies are out.
  bool disconnected() const { return state_ == Connection::closed; }
  // Called on this reactor when the target closes the queue (the end of its association),
  // so that an idle connection learns of it too. Not called for close() or a Disconnect.
  void on_closed_by_target(void (*fn)(void* arg), void* arg);

  struct Impl;  // (internal)
  Impl& impl() { return *impl_; }

 private:
  enum class Connection : uint8_t { fresh, connecting, connected, closed };
  uint32_t reactor_ = 0;
  Connection state_ = Connection::fresh;
  uint16_t qid_ = 0;
  uint16_t cntlid_ = 0;
  bool sq_flow_control_disabled_ = false;
  uint32_t in_flight_ = 0;
  std::string subnqn_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::nvmf
