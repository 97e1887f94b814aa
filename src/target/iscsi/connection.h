// One iSCSI connection (internal to src/target/iscsi): its login, then its full feature
// phase, on the reactor that owns its socket. connection.cc has its life (receive loop,
// sends, teardown), login.cc the login phase and Text requests, command.cc SCSI commands,
// Data-Out, R2T, Data-In and task management.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/net.h"
#include "net/reactor_connections.h"
#include "target/iscsi/config.h"
#include "target/iscsi/iscsi.h"
#include "target/iscsi/negotiation.h"
#include "target/iscsi/pdu_reader.h"
#include "target/iscsi/send_targets.h"
#include "target/iscsi/text_keys.h"
#include "target/scsi/scsi.h"
#include "thread/thread.h"

namespace sluice::iscsi {

// What the connections share with the Target that made them; outlives them all.
struct Target::State {
  GlobalOptions options;
  std::mutex control;  // one Target call at a time (held while it waits for reactors)
  std::map<uint16_t, std::vector<std::unique_ptr<net::Listener>>> listeners;  // under control
  std::atomic<bool> stopped{false};
  std::atomic<uint64_t> live{0};
  std::atomic<uint32_t> sessions{0};  // logins that hold one of max_sessions
  std::atomic<uint16_t> next_tsih{1};

  // The configuration, read once per login.
  std::shared_ptr<const detail::Snapshot> snapshot() const {
    std::lock_guard lock(snap_mu);
    return snap;
  }
  void publish(std::shared_ptr<const detail::Snapshot> s) {
    std::lock_guard lock(snap_mu);
    snap = std::move(s);
  }
  // One configuration change (target_config.cc): on a control thread, under `control`, `edit`
  // checks the configuration `now` and changes `next`, a copy of it, which is published only
  // when `edit` returns Ok: a failed call changes nothing.
  using Edit = std::function<Status(const detail::Snapshot& now, detail::Snapshot& next)>;
  Status change(const char* what, const Edit& edit);

 private:
  mutable std::mutex snap_mu;
  std::shared_ptr<const detail::Snapshot> snap = std::make_shared<detail::Snapshot>();
};

namespace detail {

class Connection;

// A task management request that waits for the tasks it aborted to leave the SCSI layer
// (RFC 7143 11.5.1: the response follows the end of every affected task).
struct PendingTmf {
  uint32_t itt = 0;
  uint8_t response = 0;
  uint32_t waiting = 0;
};

// A SCSI command from its PDU to its last response.
struct Command {
  Connection* conn = nullptr;
  scsi::Task task;
  iovec iov{};
  uint8_t* buf = nullptr;
  uint32_t itt = 0;
  uint64_t lun = 0;  // the wire field, echoed
  bool read = false, write = false;
  uint32_t edtl = 0;             // expected data transfer length
  uint32_t received = 0;         // data-out bytes in, from offset 0
  bool unsolicited_done = true;  // no more unsolicited Data-Out is due
  uint32_t r2t_offset = 0, r2t_length = 0, r2t_received = 0;
  uint32_t ttt = kReservedTag;  // of the R2T outstanding
  uint32_t r2t_sn = 0, data_sn = 0;
  bool executing = false;     // at the SCSI layer
  bool finished = false;      // responses queued (or dropped): free once no send holds buf
  bool aborted = false;       // answer nothing
  PendingTmf* tmf = nullptr;  // the request that aborted it while it executed
  uint32_t sends = 0;         // queued PDUs whose data is in buf
};

// One queued PDU: header, data (its own copy or a command's buffer), padding and digest.
struct OutPdu {
  net::SendItem item;
  Connection* conn = nullptr;
  Command* cmd = nullptr;
  bool close_after = false;
  uint8_t header[kMaxHeaderSize];
  uint8_t tail[8];
  std::vector<uint8_t> owned;
};

class Connection final : public net::Connection::Handler {
 public:
  // `pg_tag` and `portal`: the portal group and the address the connection arrived at.
  Connection(std::shared_ptr<Target::State> state, std::string peer, uint16_t pg_tag, std::string portal);
  ~Connection() override;
  void open(int fd);
  // Closes the socket now; tasks at the SCSI layer finish first, then the connection goes.
  void close(const char* why);
  Target::State* state() const { return state_.get(); }
  const NodeRuntime* node() const { return node_rt_.get(); }
  ConnectionInfo info() const;
  // Whether this is a session of `node` from initiator port (`initiator`, `isid`) other than
  // session `tsih`.
  bool same_port(const NodeRuntime* node, const std::string& initiator, const uint8_t* isid, uint16_t tsih) const;

 private:
  // ---- connection.cc ----
  void on_readable() override;
  void on_closed() override { close(nullptr); }
  bool process(std::span<const uint8_t> in);
  bool buffer_needed();
  bool pdu_ready();
  void send_reject(RejectReason reason, std::span<const uint8_t> bhs, bool close_after = false);
  // Queues a PDU; `data` is copied unless `cmd` owns it (a Data-In from the task buffer).
  void send_pdu(const Header& h, std::span<const uint8_t> data, Command* cmd = nullptr, bool close_after = false);
  static void pdu_sent(void* arg, bool ok);
  void maybe_die();
  void die();
  void destroy();
  friend class net::ReactorConnections<Connection>;  // calls destroy()
  uint32_t next_stat_sn() { return stat_sn_++; }
  uint32_t max_cmd_sn() const;
  // Whether a non-immediate command's CmdSN is the expected one (then ExpCmdSN moves on).
  bool accept_cmd_sn(bool immediate, uint32_t cmd_sn);

  // ---- login.cc ----
  bool login_request(const Pdu& pdu, std::span<const uint8_t> data);
  bool fail_login(const LoginRequest& req, const LoginStatus& st);
  // The first request's checks and the Negotiator's options: which node, who may log in, CHAP.
  LoginStatus begin_login(const LoginRequest& req, const std::vector<KeyValue>& keys);
  // Before the last login response: digests the node requires, a place among max_sessions,
  // and the node's device (refused once the node is deleted).
  LoginStatus attach_session();
  bool enter_full_feature();
  void text_request(const Pdu& pdu, std::span<const uint8_t> data);
  void send_text_chunk(uint32_t itt);
  void logout_request(const LogoutRequest& req);
  void nop_out(const NopOut& req, std::span<const uint8_t> data);

  // ---- keepalive.cc ----
  void start_pings();
  void ping_tick();

  // ---- command.cc ----
  bool begin_command(const Pdu& pdu);
  bool command_ready();
  bool data_out_buffer(const Pdu& pdu);
  bool data_out_done(const Pdu& pdu);
  void advance(Command* c);
  void execute(Command* c);
  static void task_done(scsi::Task* t);
  void respond(Command* c);
  void scsi_response(Command* c);
  void finish(Command* c);
  void free_command(Command* c);
  void task_mgmt(const TaskMgmtRequest& req);
  void tmf_response(uint32_t itt, uint8_t response);
  void tmf_task_ended(Command* c);
  Command* find_command(uint32_t itt);

  std::shared_ptr<Target::State> state_;
  std::string peer_;
  net::Connection conn_;
  PduReader reader_;
  TxParams tx_;
  uint8_t* staging_ = nullptr;
  bool closing_ = false;
  bool dead_ = false;
  bool draining_ = false;  // a final response is queued: read nothing more
  bool paused_ = false;    // too many bytes queued to a slow reader: reading stops until they drain
  thread::Poller* login_timer_ = nullptr;

  // Keepalive: on_readable calls count activity; ping_tick compares them once per interval.
  thread::Poller* ping_timer_ = nullptr;
  uint64_t readable_calls_ = 0, readable_at_tick_ = 0;
  bool ping_outstanding_ = false;
  std::chrono::milliseconds ping_waited_{0};

  // Login.
  bool full_feature_ = false;
  std::optional<Negotiator> neg_;
  TextAccumulator login_text_;
  uint8_t isid_[6] = {};
  SessionParams params_;
  uint16_t pg_tag_ = 0;
  std::string portal_;
  std::string peer_address_;  // peer_ without the port, for netmasks
  uint16_t cid_ = 0, tsih_ = 0;
  std::shared_ptr<const Snapshot> snap_;  // during login only
  std::string node_name_;                 // Normal sessions
  NodeConfig node_config_;                // the node's settings when the login began
  std::shared_ptr<NodeRuntime> node_rt_;  // set once attached: the device lives as long
  bool counted_ = false;                  // holds one of max_sessions
  bool attached_ = false;                 // counted in node_rt_->sessions
  uint32_t queue_depth_ = 0;

  // Sequence numbers.
  uint32_t stat_sn_ = 1;
  uint32_t exp_cmd_sn_ = 0;

  // Text (SendTargets) continuation.
  std::string text_out_;
  size_t text_off_ = 0;

  // Full feature phase.
  scsi::Device* device_ = nullptr;
  std::unique_ptr<scsi::Channel> channel_;
  uint64_t nexus_ = 0;
  std::unordered_map<uint32_t, Command*> commands_;  // by ITT, until finished
  Command* cur_ = nullptr;                           // the command whose data the reader is placing
  uint32_t executing_ = 0;
  uint32_t next_ttt_ = 1;
  std::vector<std::unique_ptr<PendingTmf>> tmfs_;
};

// Ok on a control thread; on a reactor, an error naming `what`: the Target's calls wait for
// the reactors, which a reactor cannot do.
Status control_thread_only(const char* what);
// Adopts an accepted descriptor on the calling reactor.
void start_connection(std::shared_ptr<Target::State> state, int fd, const std::string& peer, uint16_t pg_tag,
                      const std::string& portal);
// On the calling reactor: closes the connections of `state` (of `node` only, if set).
void close_connections(Target::State* state, const NodeRuntime* node = nullptr);
// On the calling reactor: closes the sessions same_port() names (a reinstated session).
void close_port(Target::State* state, const NodeRuntime* node, const std::string& initiator,
                const std::array<uint8_t, 6>& isid, uint16_t tsih);
// On the calling reactor: what its connections of `state` are.
std::vector<ConnectionInfo> list_connections(Target::State* state);

}  // namespace detail
}  // namespace sluice::iscsi
