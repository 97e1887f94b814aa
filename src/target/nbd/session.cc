// One NBD connection: handshake, then transmission, on the reactor that owns its socket.
//
// Reading: bytes arrive in a per-connection staging buffer (one recv takes many small
// requests); a large WRITE payload is read straight into its DMA buffer. Each request takes
// a slot from the connection's preallocated pool and runs on this reactor's channel to the
// bdev; its reply goes out through the connection's send queue, the read data as a second
// segment, never copied.
//
// Back-pressure: with every slot taken, or too many bytes held by requests in flight (a
// slow reader leaves replies queued, which hold both), the connection stops reading and
// resumes as replies go out.
//
// Teardown: close() shuts the socket at once; requests already at the bdev finish, their
// replies are dropped, and the last one frees the connection, from a message so that
// nothing of it is on the stack when it goes.
#include "target/nbd/session.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "base/log.h"
#include "bdev/bdev.h"
#include "env/env.h"
#include "net/net.h"
#include "target/nbd/exports.h"
#include "target/nbd/protocol.h"
#include "thread/thread.h"

namespace sluice::nbd {
namespace {

constexpr size_t kStagingBytes = 64 << 10;
// Bytes one connection's requests may hold in buffers before it stops reading: bounds the
// memory a client can pin (a single request up to max_payload always proceeds).
constexpr uint64_t kMaxInflightBytes = 64ull << 20;
// Buffers up to this size stay with their slot for the next request.
constexpr size_t kKeepBufferBytes = 128 << 10;
// Bounds one readiness event's work (each recv's bytes are all parsed before the next).
constexpr int kRecvRounds = 16;

std::atomic<uint32_t> g_max_requests{128};
std::atomic<uint32_t> g_max_payload{32u << 20};
std::atomic<int64_t> g_stop_timeout_ms{5000};
std::atomic<uint64_t> g_live{0};

uint32_t to_nbd_error(Errc e) {
  switch (e) {
    case Errc::ok: return 0;
    case Errc::invalid_argument:
    case Errc::out_of_range: return proto::kEinval;
    case Errc::no_space: return proto::kEnospc;
    case Errc::permission: return proto::kEperm;
    case Errc::not_supported: return proto::kEnotsup;
    case Errc::aborted: return proto::kEshutdown;
    default: return proto::kEio;
  }
}

class Session;

struct Slot {
  Session* session = nullptr;
  proto::Request req;
  uint32_t error = 0;
  bool flush_after = false;  // FUA: the write is done, its flush comes next
  void* buf = nullptr;
  size_t buf_cap = 0;
  uint64_t held_bytes = 0;  // counted against kMaxInflightBytes
  uint8_t header[proto::kStructuredReplySize + 8]{};
  net::SendItem send;
  bdev::IoWaitEntry wait;
  Slot* next_free = nullptr;
};

// The calling reactor's connections, and those waiting to be freed.
thread_local std::vector<Session*> t_sessions;
thread_local std::vector<Session*> t_dead;
thread_local bool t_reap_pending = false;

void reap(void*);

class Session final : public net::Connection::Handler {
 public:
  explicit Session(std::string peer) : peer_(std::move(peer)), hs_(lookup_fn(), [] { return exports_table::names(); }) {
    max_requests_ = g_max_requests.load();
    max_payload_ = g_max_payload.load();
  }
  ~Session() override {
    for (Slot& s : slots_) env::dma_free(s.buf);
    std::free(staging_);
  }

  void open(int fd) {
    staging_ = static_cast<uint8_t*>(std::malloc(kStagingBytes));
    if (staging_ == nullptr || !conn_.open(fd, this).ok()) {
      if (staging_ == nullptr) ::close(fd);
      die();
      return;
    }
    hs_out_ = proto::greeting();
    send_handshake();
  }

  // The export in transmission, else the one the handshake chose so far (0: none).
  uint64_t export_id() const { return export_ ? export_->id : chosen_ ? chosen_->id : 0; }

  // Closes the socket now; in-flight requests finish first, then the session goes.
  void close(const char* why) {
    if (closing_) return;
    closing_ = true;
    if (why != nullptr && why[0] != '\0') log::info("nbd: {}: closing: {}", peer_, why);
    conn_.close();
    // A WRITE whose payload was still arriving never reached the bdev: its slot is free now.
    if (Slot* s = cur_) {
      cur_ = nullptr;
      reply_sent(s);
    }
    maybe_die();
  }

  // The reap, outside every callback: returns the channel, then frees.
  void destroy() {
    if (ch_ != nullptr) {
      Status st = export_->desc->put_channel(ch_);
      if (!st.ok()) log::error("nbd: {}: {}", peer_, st.to_string());
      ch_ = nullptr;
    }
    if (export_) export_->connections.fetch_sub(1);
    export_.reset();
    delete this;
    g_live.fetch_sub(1);
  }

 private:
  enum class Phase : uint8_t { handshake, header, payload, discard };

  proto::ExportLookup lookup_fn() {
    return [this](std::string_view name) -> std::optional<proto::ExportView> {
      auto e = exports_table::find(name);
      if (!e || e->gone.load()) return std::nullopt;
      chosen_ = e;
      return proto::ExportView{e->name, e->limits(max_payload_)};
    };
  }

  // ---- net callbacks ----------------------------------------------------------------------

  void on_readable() override {
    for (int round = 0; round < kRecvRounds && !closing_ && conn_.reading(); ++round) {
      // Only a handshake option can be left part-read: keep it at the front and read on.
      if (stage_off_ > 0) {
        std::memmove(staging_, staging_ + stage_off_, stage_len_ - stage_off_);
        stage_len_ -= stage_off_;
        stage_off_ = 0;
      }
      if (stage_len_ == 0 && phase_ == Phase::payload && cur_->req.length - payload_have_ >= kStagingBytes) {
        auto n = conn_.recv(static_cast<uint8_t*>(cur_->buf) + payload_have_, cur_->req.length - payload_have_);
        if (!n.ok() || *n == 0) return;
        payload_have_ += *n;
        if (payload_have_ == cur_->req.length) payload_done();
        continue;
      }
      if (stage_len_ == kStagingBytes) {  // cannot happen: options are capped well below it
        close("handshake message larger than the staging buffer");
        return;
      }
      auto n = conn_.recv(staging_ + stage_len_, kStagingBytes - stage_len_);
      if (!n.ok() || *n == 0) return;
      stage_len_ += *n;
      if (!process()) return;
    }
  }

  void on_closed() override { close(nullptr); }

  // ---- handshake --------------------------------------------------------------------------

  void send_handshake() {
    hs_sending_ = true;
    conn_.set_reading(false);
    hs_send_.iov[0] = {hs_out_.data(), hs_out_.size()};
    hs_send_.iovcnt = 1;
    hs_send_.done = [](void* arg, bool ok) { static_cast<Session*>(arg)->handshake_sent(ok); };
    hs_send_.arg = this;
    conn_.send(&hs_send_);
  }

  void handshake_sent(bool ok) {
    hs_sending_ = false;
    hs_out_.clear();
    if (!ok || closing_) {
      close(nullptr);
      return;
    }
    if (hs_.state() == proto::Handshake::State::closed) {
      close(hs_.error().c_str());
      return;
    }
    if (hs_.state() == proto::Handshake::State::transmission && !enter_transmission()) return;
    resume();
  }

  bool enter_transmission() {
    export_ = std::move(chosen_);
    if (export_) export_->connections.fetch_add(1);  // destroy() gives it back
    if (!export_ || export_->gone.load()) {
      close("export went away during the handshake");
      return false;
    }
    auto ch = export_->desc->get_channel();
    if (!ch.ok()) {
      close("no channel to the bdev");
      return false;
    }
    ch_ = ch.value();
    limits_ = export_->limits(max_payload_);
    structured_ = hs_.structured_replies();
    slots_.resize(max_requests_);
    for (Slot& s : slots_) {
      s.session = this;
      s.send.arg = &s;
      s.send.done = [](void* arg, bool) { static_cast<Slot*>(arg)->session->reply_sent(static_cast<Slot*>(arg)); };
      s.wait.arg = &s;
      s.wait.fn = [](void* arg) { static_cast<Slot*>(arg)->session->submit(static_cast<Slot*>(arg)); };
      s.next_free = free_;
      free_ = &s;
    }
    buf_align_ = std::max<size_t>(export_->desc->geometry().buf_align, env::kDmaPageSize);
    phase_ = Phase::header;
    return true;
  }

  // ---- the request stream -----------------------------------------------------------------

  // Consumes staged bytes. False when it cannot go on (blocked or closing): reading pauses.
  bool process() {
    if (in_process_) return true;
    in_process_ = true;
    const bool more = process_staged();
    in_process_ = false;
    if (!more && !closing_) conn_.set_reading(false);  // blocked: resume() turns it back on
    return more;
  }

  // Bounded by the staging buffer: each pass consumes at most what one recv brought.
  bool process_staged() {
    while (!closing_) {
      const size_t avail = stage_len_ - stage_off_;
      const uint8_t* p = staging_ + stage_off_;
      switch (phase_) {
        case Phase::handshake: {
          if (hs_sending_) return false;
          size_t used = hs_.feed(std::span<const uint8_t>(p, avail), hs_out_);
          stage_off_ += used;
          if (!hs_out_.empty() || hs_.state() == proto::Handshake::State::closed) {
            if (hs_out_.empty()) {
              close(hs_.error().c_str());
              return false;
            }
            send_handshake();
            if (hs_sending_) return false;  // resumed when it is out
            break;
          }
          if (used == 0) return true;
          break;
        }
        case Phase::header: {
          if (disc_) return false;
          const size_t take = std::min(avail, proto::kRequestSize - hdr_have_);
          std::memcpy(hdr_ + hdr_have_, p, take);
          hdr_have_ += take;
          stage_off_ += take;
          if (hdr_have_ < proto::kRequestSize) return true;
          if (!start_request()) return false;
          break;
        }
        case Phase::payload: {
          const size_t take = std::min<size_t>(avail, cur_->req.length - payload_have_);
          if (take == 0 && avail == 0) return true;
          std::memcpy(static_cast<uint8_t*>(cur_->buf) + payload_have_, p, take);
          payload_have_ += take;
          stage_off_ += take;
          if (payload_have_ == cur_->req.length) payload_done();
          break;
        }
        case Phase::discard: {
          const size_t take = std::min<uint64_t>(avail, discard_left_);
          stage_off_ += take;
          discard_left_ -= take;
          if (discard_left_ > 0) return true;
          phase_ = Phase::header;
          reply(cur_);
          cur_ = nullptr;
          break;
        }
      }
    }
    return !closing_;
  }

  // A whole header is in hdr_. False: blocked (the header stays) or closed.
  bool start_request() {
    auto req = proto::parse_request(std::span<const uint8_t, proto::kRequestSize>(hdr_, proto::kRequestSize));
    if (!req) {
      close("bad request magic");
      return false;
    }
    if (req->type == proto::kCmdDisc) {
      hdr_have_ = 0;
      disc_ = true;  // finish what is in flight, then close
      maybe_die();
      return false;
    }
    uint32_t error = proto::validate(*req, limits_);
    const bool data = error == 0 && (req->type == proto::kCmdRead || req->type == proto::kCmdWrite);
    const uint64_t bytes = data ? req->length : 0;
    if (free_ == nullptr || (held_bytes_ > 0 && held_bytes_ + bytes > kMaxInflightBytes)) return false;
    hdr_have_ = 0;
    Slot* s = free_;
    free_ = s->next_free;
    ++in_flight_;
    s->req = *req;
    s->error = error;
    s->flush_after = false;
    s->held_bytes = 0;
    if (data && !ensure_buffer(s, req->length)) s->error = proto::kEnomem;
    if (s->error == 0) {
      s->held_bytes = bytes;
      held_bytes_ += bytes;
    }
    if (req->type == proto::kCmdWrite) {
      cur_ = s;
      if (s->error == 0) {
        phase_ = Phase::payload;
        payload_have_ = 0;
      } else {
        phase_ = Phase::discard;  // the payload is on the wire anyway: skip it, then reply
        discard_left_ = req->length;
      }
      return true;
    }
    if (s->error != 0)
      reply(s);
    else
      submit(s);
    return true;
  }

  bool ensure_buffer(Slot* s, size_t len) {
    if (s->buf_cap >= len) return true;
    env::dma_free(s->buf);
    s->buf = env::dma_alloc(len, buf_align_);
    s->buf_cap = s->buf ? len : 0;
    return s->buf != nullptr;
  }

  void payload_done() {
    Slot* s = cur_;
    cur_ = nullptr;
    phase_ = Phase::header;
    submit(s);
  }

  // ---- bdev I/O ---------------------------------------------------------------------------

  void submit(Slot* s) {
    if (closing_) {  // nobody to answer: finish the slot without touching the bdev
      s->error = proto::kEshutdown;
      reply(s);
      return;
    }
    const uint32_t bs = limits_.block_size;
    const uint64_t lba = s->req.offset / bs, n = s->req.length / bs;
    bdev::BdevDesc& d = *export_->desc;
    auto done = [](void* arg, Errc st) {
      auto* slot = static_cast<Slot*>(arg);
      slot->session->io_done(slot, st);
    };
    const bool flush = s->flush_after || s->req.type == proto::kCmdFlush;
    if (flush && (limits_.read_only || !export_->desc->geometry().supports(bdev::IoType::flush))) {
      // Nothing to flush: a read-only export wrote nothing, and a device without FLUSH
      // has no volatile cache (its writes are durable when they complete).
      reply(s);
      return;
    }
    Status st;
    if (s->flush_after) {
      st = d.flush(ch_, done, s);
    } else {
      switch (s->req.type) {
        case proto::kCmdRead: st = d.read(ch_, s->buf, lba, n, done, s); break;
        case proto::kCmdWrite: st = d.write(ch_, s->buf, lba, n, done, s); break;
        case proto::kCmdFlush: st = d.flush(ch_, done, s); break;
        case proto::kCmdTrim: st = d.unmap(ch_, lba, n, done, s); break;
        case proto::kCmdWriteZeroes: st = d.write_zeroes(ch_, lba, n, done, s); break;
        default: st = Status(Errc::invalid_argument, "unknown command"); break;
      }
    }
    if (st.ok()) return;
    if (st.code() == Errc::busy) {  // the channel's pool is full: retry when a slot frees
      Status w = bdev::wait_for_room(ch_, &s->wait);
      if (w.ok()) return;
    }
    s->error = to_nbd_error(st.code());
    reply(s);
  }

  void io_done(Slot* s, Errc st) {
    if (st != Errc::ok) {
      s->error = to_nbd_error(st);
    } else if (!s->flush_after && (s->req.flags & proto::kCmdFlagFua) && s->req.type != proto::kCmdRead &&
               s->req.type != proto::kCmdFlush) {
      // The bdev has no FUA: the write, then a flush, before the reply.
      s->flush_after = true;
      submit(s);
      return;
    }
    reply(s);
  }

  // ---- replies ----------------------------------------------------------------------------

  void reply(Slot* s) {
    net::SendItem& it = s->send;
    const bool read = s->req.type == proto::kCmdRead;
    size_t h;
    if (structured_ && read) {
      h = s->error == 0 ? proto::build_read_chunk(s->header, s->req.cookie, s->req.offset, s->req.length)
                        : proto::build_error_chunk(s->header, s->req.cookie, s->error);
    } else {
      h = proto::build_simple_reply(s->header, s->error, s->req.cookie);
    }
    it.iov[0] = {s->header, h};
    it.iovcnt = 1;
    if (read && s->error == 0) {
      it.iov[1] = {s->buf, s->req.length};
      it.iovcnt = 2;
    }
    conn_.send(&it);  // a closed connection hands it straight back
  }

  void reply_sent(Slot* s) {
    held_bytes_ -= s->held_bytes;
    s->held_bytes = 0;
    if (s->buf_cap > kKeepBufferBytes) {
      env::dma_free(s->buf);
      s->buf = nullptr;
      s->buf_cap = 0;
    }
    s->next_free = free_;
    free_ = s;
    --in_flight_;
    if (closing_ || disc_) {
      maybe_die();
      return;
    }
    resume();
  }

  // Unblocked: read again, and go on with what is staged (unless already inside that).
  void resume() {
    if (closing_) return;
    conn_.set_reading(true);
    if (in_process_) return;  // the pass under way goes on by itself
    if (stage_off_ < stage_len_ || hdr_have_ == proto::kRequestSize) {
      if (!process()) conn_.set_reading(false);
    }
  }

  void maybe_die() {
    if (in_flight_ > 0) return;
    if (disc_ && !closing_) {
      close(nullptr);  // calls back here with closing_ set
      return;
    }
    if (!closing_ || dead_) return;
    die();
  }

  void die() {
    dead_ = true;
    closing_ = true;
    auto& v = t_sessions;
    v.erase(std::remove(v.begin(), v.end(), this), v.end());
    t_dead.push_back(this);
    if (!t_reap_pending) {
      const uint32_t me = thread::reactor_id(thread::current_reactor());
      t_reap_pending = thread::send_message(me, reap, nullptr).ok();
    }
  }

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

  friend void start_session(int fd, const std::string& peer);
};

void reap(void*) {
  t_reap_pending = false;
  std::vector<Session*> dead;
  dead.swap(t_dead);
  for (Session* s : dead) s->destroy();
}

}  // namespace

void set_session_limits(const SessionLimits& limits) {
  g_max_requests.store(std::max<uint32_t>(1, limits.max_requests));
  g_max_payload.store(limits.max_payload);
}
std::chrono::milliseconds stop_timeout() { return std::chrono::milliseconds(g_stop_timeout_ms.load()); }
void set_stop_timeout(std::chrono::milliseconds t) { g_stop_timeout_ms.store(t.count()); }
uint64_t live_sessions() { return g_live.load(); }

void start_session(int fd, const std::string& peer) {
  g_live.fetch_add(1);
  auto* s = new Session(peer);
  t_sessions.push_back(s);
  s->open(fd);
}

void close_sessions(uint64_t export_id) {
  std::vector<Session*> v = t_sessions;  // close() may reshape the list
  for (Session* s : v)
    if (export_id == 0 || s->export_id() == export_id) s->close("disconnected by the server");
  // A session still handshaking that has not looked the export up fails at the lookup.
  if (!t_dead.empty() && !t_reap_pending)
    t_reap_pending = thread::send_message(thread::reactor_id(thread::current_reactor()), reap, nullptr).ok();
}

}  // namespace sluice::nbd
