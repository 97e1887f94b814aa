// One NVMe/TCP queue seen from the host: a TCP connection to one of a controller's queues,
// polled by the thread that owns it, as a PCIe IoQueue is. The controller code above it
// (Connect, Property Get/Set, admin and I/O commands) is the same for every queue.
//
//   auto q = tcp::HostQueue::open(net::ListenAddress::tcp_address("127.0.0.1", 4420), 128, {});
//   auto cntlid = (*q)->connect(0, subnqn, hostnqn, connect::kNewController, kato_ms);
//   (*q)->submit(sqe, iov, iovcnt, on_done, arg);   // queued; written at the next poll
//   while (!done) (*q)->poll();                     // sends, receives, callbacks
//
// Data moves between the socket and the caller's buffers: write data (in the capsule, or in
// H2CData PDUs when the controller asks with an R2T) is sent straight from the iovecs, and
// C2HData lands in them, unless one PDU's data straddles two segments (then it is copied once,
// counted in stats().bounces). The caller's buffers need not be DMA memory.
//
// Rules: one thread submits and polls; callbacks run only inside poll() (or execute()). A
// queue that breaks (the peer closed, a TermReq, a malformed PDU, a command past its timeout)
// fails every outstanding command (Completion::reset_aborted, timed_out for the late one) and
// refuses new ones; failed() and error() say so. Nothing is retried here: reconnecting is the
// controller's decision.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/net.h"
#include "nvme/nvme.h"
#include "nvme/tcp_pdu.h"
#include "nvme/tcp_pdu_reader.h"

namespace sluice::nvme::tcp {

struct QueueOptions {
  bool header_digest = false;
  bool data_digest = false;
  uint64_t connect_timeout_ms = 5000;   // the TCP handshake and the IC exchange, each
  uint64_t command_timeout_ms = 30000;  // 0: none
  // Write data up to this size rides in the command capsule (8 KiB is what every controller
  // takes on its admin queue; I/O queues say theirs in Identify's IOCCSZ). Larger data waits
  // for the controller's R2T.
  uint32_t in_capsule_bytes = 8192;
  // The largest command this queue sends (the controller's MDTS): it bounds the PDUs accepted.
  uint32_t max_transfer_bytes = 1 << 20;
  // Connect asks the controller to skip SQ Head in completions (CATTR), which lets it end a
  // read with its last C2HData (SUCCESS) and no CapsuleResp: one PDU per read instead of two.
  bool disable_sq_flow_control = false;
};

class HostQueue {
 public:
  // Connects (TCP, then ICReq/ICResp with the digests asked for) and sizes the queue for
  // `entries` commands (entries - 1 outstanding, as on PCIe). Waits for both: the control path.
  static Result<std::unique_ptr<HostQueue>> open(const net::ListenAddress& address, uint32_t entries,
                                                 const QueueOptions& options);
  // The same without waiting, for a poller that must not block (a reactor making a channel):
  // poll() carries the TCP handshake and the IC exchange on; commands submitted meanwhile go
  // out once they are done. A setup that outlives connect_timeout_ms fails the queue.
  static Result<std::unique_ptr<HostQueue>> start(const net::ListenAddress& address, uint32_t entries,
                                                  const QueueOptions& options);
  ~HostQueue();  // closes the socket; outstanding commands get no callback
  HostQueue(const HostQueue&) = delete;
  HostQueue& operator=(const HostQueue&) = delete;

  // Queues a command. Its data, `iov` (the SGL is filled in here), goes to the controller or
  // comes back as the opcode's direction bits say (for a fabrics command, its FCTYPE's).
  // Errc::busy when entries - 1 are outstanding; io_error on a failed queue. `cid`, if given,
  // receives the CID the command travels with (what an Abort names).
  Errc submit(const spec::Sqe& sqe, const iovec* iov, int iovcnt, CommandCallback cb, void* arg,
              uint16_t* cid = nullptr);
  // Writes what was queued, reads what arrived, runs callbacks. Returns completions run.
  int poll();

  // Runs one command to completion, polling (the control path: Connect, properties, admin
  // commands). `data` is `len` bytes in the command's direction.
  Result<Completion> execute(const spec::Sqe& sqe, void* data, size_t len);
  // Fabrics Connect for queue `qid` (0: the admin queue, with cntlid kNewController for a new
  // association). Returns the controller ID the controller assigned or joined.
  Result<uint16_t> connect(uint16_t qid, std::string_view subnqn, std::string_view hostnqn, uint16_t cntlid,
                           uint32_t kato_ms);
  // The same, queued: `cb` gets its completion (connect_status() reads it as a Status).
  Errc submit_connect(uint16_t qid, std::string_view subnqn, std::string_view hostnqn, uint16_t cntlid,
                      uint32_t kato_ms, CommandCallback cb, void* arg);
  Status connect_status(const Completion& c, uint16_t qid, std::string_view subnqn, std::string_view hostnqn) const;

  bool failed() const { return fd_ < 0; }
  bool ready() const { return fd_ >= 0 && phase_ == Phase::ready; }
  const std::string& error() const { return error_; }
  uint32_t outstanding() const { return outstanding_; }
  uint32_t capacity() const { return static_cast<uint32_t>(slots_.size()); }
  const IcResp& ic_resp() const { return ic_resp_; }
  const std::string& peer() const { return peer_; }

  struct Stats {
    uint64_t submitted = 0, completed = 0, errors = 0, r2ts = 0, h2c_pdus = 0, c2h_pdus = 0, success_in_data = 0,
             bounces = 0, sendmsgs = 0, recvs = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  // A command's state: its caller's data and the PDU headers it sends (so that a command
  // allocates nothing).
  struct Slot {
    CommandCallback cb = nullptr;
    void* arg = nullptr;
    uint16_t cid = 0;
    bool busy = false;
    bool to_controller = false;  // write data (else read data, if any)
    bool data_error = false;     // a C2HData failed its digest: the command fails
    const iovec* iov = nullptr;
    int iovcnt = 0;
    uint32_t bytes = 0;
    uint32_t h2c_next = 0, h2c_end = 0;  // the R2T'd range still to send
    uint16_t ttag = 0;
    bool h2c_queued = false;          // on h2c_ready_
    uint64_t deadline = 0;            // ticks; 0: none
    uint8_t header[kMaxBuiltSize]{};  // its CapsuleCmd, then each H2CData header in turn
    uint8_t digest[kDigestSize]{};
    spec::Sqe sqe{};  // kept until its capsule is built (after the IC exchange)
  };
  enum class Phase : uint8_t { connecting, ic, ready };
  // One command run to completion by execute() or connect().
  struct Waiter {
    bool done = false;
    Completion c;
    static void on_done(void* arg, const Completion& c);
  };
  void wait_for(const Waiter& w);

  HostQueue(int fd, std::string peer, uint32_t entries, const QueueOptions& options);
  // Setup steps, from poll(): the TCP handshake done, then the ICResp in.
  void check_connected();
  void on_ic_resp();
  void check_setup_deadline();
  void queue_capsule(Slot& s);

  // ---- sending (tcp_queue.cc) ----
  void queue_bytes(const void* p, size_t len);
  void queue_data(const Slot& s, uint32_t offset, uint32_t len, uint8_t* digest);
  bool refill_h2c();
  bool flush();

  // ---- receiving (tcp_queue_recv.cc) ----
  bool receive();
  bool on_need_buffer();
  bool on_pdu();
  void finish(Slot& s, Completion c);
  void check_timeouts();
  void fail(std::string why);

  int fd_;
  std::string peer_;
  QueueOptions options_;
  Phase phase_ = Phase::connecting;
  uint64_t setup_deadline_ns_ = 0;
  uint8_t ic_req_[kMaxBuiltSize]{};
  std::vector<uint16_t> unsent_;       // commands submitted before the IC exchange ended
  std::vector<uint8_t> connect_data_;  // submit_connect()'s 1024 bytes
  iovec connect_iov_{};
  IcResp ic_resp_;
  TxParams tx_;
  PduReader rx_{Role::host, RxParams{}};
  std::string error_;

  std::vector<Slot> slots_;
  std::vector<uint16_t> free_cids_;
  std::vector<uint16_t> h2c_ready_;  // slots with R2T'd data still to send
  uint32_t outstanding_ = 0;
  uint64_t timeout_ticks_ = 0;
  uint64_t next_timeout_check_ = 0;

  std::vector<iovec> tx_iov_;  // queued, unsent; tx_head_ is the first
  size_t tx_head_ = 0;

  std::vector<uint8_t> staging_;
  size_t stage_off_ = 0, stage_len_ = 0;
  std::vector<uint8_t> scratch_;  // a C2HData that straddles segments
  Slot* scratch_slot_ = nullptr;
  uint32_t scratch_offset_ = 0;
  Stats stats_;
};

}  // namespace sluice::nvme::tcp
