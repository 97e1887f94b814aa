// One NVMe/TCP connection (internal to src/target/nvmf_tcp): the receive side
// (connection.cc: PDUs in, commands to the queue pair) and the send side
// (connection_send.cc: R2T, C2HData, CapsuleResp, TermReq). Everything here belongs to the
// reactor that owns the socket.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "net/net.h"
#include "nvme/tcp_pdu.h"
#include "nvme/tcp_pdu_reader.h"
#include "target/nvmf/nvmf.h"
#include "target/nvmf_tcp/nvmf_tcp.h"

namespace sluice::nvmf::tcp::detail {

inline constexpr size_t kStagingBytes = 64 << 10;
// Data at least this large is received straight into the command's buffer, not staged.
inline constexpr size_t kDirectRecvBytes = 16 << 10;
// Bounds one readiness event's work.
inline constexpr int kRecvRounds = 16;
// Buffers up to this size stay with their slot for the next command.
inline constexpr size_t kKeepBufferBytes = 128 << 10;

class Conn;

// What the transport and its connections share; connections hold it by shared_ptr, so it
// outlives the last of them.
struct Shared {
  Target* target = nullptr;
  TransportOptions options;
  std::atomic<uint64_t> live{0};
  std::atomic<bool> stopping{false};
};

// One command slot of a connection's pool: the request, its data buffer and the PDUs it
// sends, so that a command allocates nothing once its buffer exists.
struct Slot {
  Conn* conn = nullptr;
  uint16_t tag = 0;  // its index: the TTAG of its R2T
  bool busy = false;
  bool executing = false;   // at the queue pair
  bool data_error = false;  // a data digest failed: the command fails once its data is in
  bool status_in_data = false;  // its last C2HData has SUCCESS set: no CapsuleResp follows
  Request req;
  Xfer xfer = Xfer::none;
  uint32_t h2c_received = 0;  // bytes of H2CData in so far
  void* buf = nullptr;
  size_t buf_cap = 0;
  uint8_t data_hdr[nvme::tcp::kMaxBuiltSize]{};  // R2T or C2HData header
  uint8_t resp_hdr[nvme::tcp::kMaxBuiltSize]{};  // CapsuleResp
  uint8_t ddgst[nvme::tcp::kDigestSize]{};
  net::SendItem data_send;
  net::SendItem resp_send;
  Slot* next_free = nullptr;
};

class Conn final : public net::Connection::Handler {
 public:
  Conn(std::shared_ptr<Shared> shared, std::string peer);
  ~Conn() override;
  void open(int fd);
  // Closes the socket now; commands at the queue pair finish first, then the connection
  // is freed from a message.
  void close(const char* why);
  void destroy();
  const Shared* shared() const { return shared_.get(); }
  // A queue of controller `cntlid` of subsystem `nqn` on `target`.
  bool serves(const Target* target, std::string_view nqn, uint16_t cntlid) const {
    return shared_->target == target && qp_ && qp_->cntlid() == cntlid && qp_->subsystem_nqn() == nqn;
  }

 private:
  // ---- receive (connection.cc) ----
  void on_readable() override;
  void on_closed() override { close(nullptr); }
  // Runs the reader over staged bytes and acts on each PDU. False: blocked or closing.
  bool process();
  bool process_pdus();
  bool on_need_buffer();
  bool on_pdu();
  void on_ic_req();
  bool on_capsule();
  bool take_slot_for_capsule();
  void on_h2c_done(Slot* s);
  void fatal(const nvme::tcp::PduError& e);
  void resume();

  // ---- commands and sends (connection_send.cc) ----
  bool ensure_buffer(Slot* s, size_t len);
  void execute(Slot* s);
  static void on_done(Request* req);
  void command_done(Slot* s);
  void send_r2t(Slot* s);
  void send_response(Slot* s);
  // Fails the command with `status` without running it (a transport-level problem).
  void fail_command(Slot* s, uint16_t status);
  void response_sent(Slot* s);
  void release(Slot* s);
  void send_term_req(const nvme::tcp::PduError& e, std::span<const uint8_t> header);
  void maybe_die();
  void die();

  std::shared_ptr<Shared> shared_;
  std::string peer_;
  net::Connection conn_;
  nvme::tcp::PduReader rx_;
  nvme::tcp::TxParams tx_;
  bool ic_done_ = false;
  std::unique_ptr<QueuePair> qp_;
  bool closing_ = false;
  bool terminating_ = false;  // a TermReq is going out: nothing more is read, then close
  bool dead_ = false;
  bool in_process_ = false;
  bool pdu_handled_ = false;  // the reader's current pdu_ready PDU was acted on
  uint8_t* staging_ = nullptr;
  size_t stage_off_ = 0, stage_len_ = 0;
  std::vector<Slot> slots_;
  Slot* free_ = nullptr;
  Slot* cur_ = nullptr;  // the command whose data (in-capsule or H2CData) is arriving
  uint32_t busy_ = 0;    // slots taken
  uint32_t sends_ = 0;   // ICResp/TermReq in flight
  uint16_t sqhd_ = 0;
  uint8_t ic_buf_[nvme::tcp::kMaxBuiltSize]{};  // ICResp
  net::SendItem ic_send_;
  uint8_t term_buf_[nvme::tcp::kMaxBuiltSize]{};  // C2HTermReq
  net::SendItem term_send_;
};

// The calling reactor's connections of `shared`'s transport: close them all.
void close_connections(const Shared* shared);
// The calling reactor's queues of one controller (any transport of `target`): close them.
void close_controller(const Target* target, const std::string& nqn, uint16_t cntlid);
void start_connection(std::shared_ptr<Shared> shared, int fd, const std::string& peer);

}  // namespace sluice::nvmf::tcp::detail
