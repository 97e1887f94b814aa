// One NBD connection (internal to src/target/nbd): the Session class, shared by session.cc
// (its life: handshake, the request stream, teardown) and session_io.cc (a request at the
// bdev and its reply). Everything here belongs to the reactor that owns the connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "env/env.h"
#include "net/net.h"
#include "target/nbd/exports.h"
#include "target/nbd/protocol.h"

namespace sluice::nbd::detail {

constexpr size_t kStagingBytes = 64 << 10;
// Bytes one connection's requests may hold in buffers before it stops reading: bounds the
// memory a client can pin (a single request up to max_payload always proceeds).
constexpr uint64_t kMaxInflightBytes = 64ull << 20;
// Buffers up to this size stay with their slot for the next request.
constexpr size_t kKeepBufferBytes = 128 << 10;
// Bounds one readiness event's work (each recv's bytes are all parsed before the next).
constexpr int kRecvRounds = 16;
// Extents in one BLOCK_STATUS reply (64 KiB of them): a client asks again where it ended.
constexpr size_t kMaxStatusExtents = 8191;

class Session;

// One request slot of a connection's pool: the request, its buffer, its reply header and
// the queue links it needs, so that a request allocates nothing.
struct Slot {
  Session* session = nullptr;
  proto::Request req;
  uint32_t error = 0;
  bool flush_after = false;  // FUA: the write is done, its flush comes next
  uint32_t status_len = 0;   // BLOCK_STATUS: the reply payload's bytes in buf
  void* buf = nullptr;
  size_t buf_cap = 0;
  uint64_t held_bytes = 0;  // counted against kMaxInflightBytes
  uint8_t header[proto::kStructuredReplySize + 8]{};
  net::SendItem send;
  bdev::IoWaitEntry wait;
  Slot* next_free = nullptr;
};

class Session final : public net::Connection::Handler {
 public:
  explicit Session(std::string peer);
  ~Session() override;
  void open(int fd);

  // The export in transmission, else the one the handshake chose so far (0: none).
  uint64_t export_id() const { return export_ ? export_->id : chosen_ ? chosen_->id : 0; }

  // Closes the socket now; in-flight requests finish first, then the session goes.
  void close(const char* why);

  // The reap, outside every callback: returns the channel, then frees.
  void destroy();

 private:
  enum class Phase : uint8_t { handshake, header, payload, discard };

  proto::ExportLookup lookup_fn();

  // ---- net callbacks ----------------------------------------------------------------------

  void on_readable() override;
  void on_closed() override { close(nullptr); }

  // ---- handshake --------------------------------------------------------------------------

  void send_handshake();
  void handshake_sent(bool ok);
  bool enter_transmission();

  // ---- the request stream -----------------------------------------------------------------

  // Consumes staged bytes. False when it cannot go on (blocked or closing): reading pauses.
  bool process();

  // Bounded by the staging buffer: each pass consumes at most what one recv brought.
  bool process_staged();

  // A whole header is in hdr_. False: blocked (the header stays) or closed.
  bool start_request();
  bool ensure_buffer(Slot* s, size_t len);
  void payload_done();

  // ---- bdev I/O ---------------------------------------------------------------------------

  void submit(Slot* s);
  void io_done(Slot* s, Errc st);
  // BLOCK_STATUS: answered at once from the bdev's allocation map, into the slot's buffer.
  void block_status(Slot* s);

  // ---- replies ----------------------------------------------------------------------------

  void reply(Slot* s);
  void reply_sent(Slot* s);

  // Unblocked: read again, and go on with what is staged (unless already inside that).
  void resume();
  // Closing (or after DISC) with no request in flight: queue the session to be freed by a
  // message (die), so that nothing of it is on the stack when it goes.
  void maybe_die();
  void die();

  std::string peer_;
  net::Connection conn_;
  Phase phase_ = Phase::handshake;
  bool closing_ = false;
  bool dead_ = false;
  bool disc_ = false;
  bool in_process_ = false;
  uint8_t* staging_ = nullptr;
  size_t stage_off_ = 0, stage_len_ = 0;

  proto::Handshake hs_;
  std::vector<uint8_t> hs_out_;
  net::SendItem hs_send_;
  bool hs_sending_ = false;
  std::shared_ptr<Export> chosen_;

  std::shared_ptr<Export> export_;
  bdev::BdevChannel* ch_ = nullptr;
  proto::ExportLimits limits_;
  bool structured_ = false;
  uint32_t max_requests_;
  uint32_t max_payload_;
  size_t buf_align_ = env::kDmaPageSize;
  std::vector<Slot> slots_;
  Slot* free_ = nullptr;
  uint32_t in_flight_ = 0;
  uint64_t held_bytes_ = 0;
  uint8_t hdr_[proto::kRequestSize]{};
  size_t hdr_have_ = 0;
  Slot* cur_ = nullptr;  // the WRITE whose payload is arriving (or being skipped)
  size_t payload_have_ = 0;
  uint64_t discard_left_ = 0;
};

uint32_t to_nbd_error(Errc e);

}  // namespace sluice::nbd::detail
