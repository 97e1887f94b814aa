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

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/log.h"
#include "env/env.h"
#include "net/reactor_connections.h"
#include "target/nbd/session_impl.h"
#include "thread/thread.h"

namespace sluice::nbd {
namespace detail {
namespace {

std::atomic<uint32_t> g_max_requests{128};
std::atomic<uint32_t> g_max_payload{32u << 20};
std::atomic<int64_t> g_stop_timeout_ms{5000};
std::atomic<uint64_t> g_live{0};

using Sessions = net::ReactorConnections<Session>;

}  // namespace

Session::Session(std::string peer) : peer_(std::move(peer)), hs_(lookup_fn(), [] { return exports_table::names(); }) {
  max_requests_ = g_max_requests.load();
  max_payload_ = g_max_payload.load();
}

Session::~Session() {
  for (Slot& s : slots_) env::dma_free(s.buf);
  std::free(staging_);
}

void Session::open(int fd) {
  staging_ = static_cast<uint8_t*>(std::malloc(kStagingBytes));
  if (staging_ == nullptr || !conn_.open(fd, this).ok()) {
    if (staging_ == nullptr) ::close(fd);
    die();
    return;
  }
  hs_out_ = proto::greeting();
  send_handshake();
}

void Session::close(const char* why) {
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

void Session::destroy() {
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

proto::ExportLookup Session::lookup_fn() {
  return [this](std::string_view name) -> std::optional<proto::ExportView> {
    auto e = exports_table::find(name);
    if (!e || e->gone.load()) return std::nullopt;
    chosen_ = e;
    return proto::ExportView{e->name, e->limits(max_payload_)};
  };
}

void Session::on_readable() {
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

void Session::send_handshake() {
  hs_sending_ = true;
  conn_.set_reading(false);
  hs_send_.iov[0] = {hs_out_.data(), hs_out_.size()};
  hs_send_.iovcnt = 1;
  hs_send_.done = [](void* arg, bool ok) { static_cast<Session*>(arg)->handshake_sent(ok); };
  hs_send_.arg = this;
  conn_.send(&hs_send_);
}

void Session::handshake_sent(bool ok) {
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

bool Session::enter_transmission() {
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
  limits_.block_status = hs_.block_status();
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

bool Session::process() {
  if (in_process_) return true;
  in_process_ = true;
  const bool more = process_staged();
  in_process_ = false;
  if (!more && !closing_) conn_.set_reading(false);  // blocked: resume() turns it back on
  return more;
}

bool Session::process_staged() {
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

bool Session::start_request() {
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

void Session::resume() {
  if (closing_) return;
  conn_.set_reading(true);
  if (in_process_) return;  // the pass under way goes on by itself
  if (stage_off_ < stage_len_ || hdr_have_ == proto::kRequestSize) {
    if (!process()) conn_.set_reading(false);
  }
}

void Session::maybe_die() {
  if (in_flight_ > 0) return;
  if (disc_ && !closing_) {
    close(nullptr);  // calls back here with closing_ set
    return;
  }
  if (!closing_ || dead_) return;
  die();
}

void Session::die() {
  dead_ = true;
  closing_ = true;
  Sessions::retire(this);
}

}  // namespace detail

using detail::g_live;
using detail::g_max_payload;
using detail::g_max_requests;
using detail::g_stop_timeout_ms;
using detail::Session;
using detail::Sessions;

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
  Sessions::add(s);
  s->open(fd);
}

void close_sessions(uint64_t export_id) {
  for (Session* s : Sessions::snapshot())
    if (export_id == 0 || s->export_id() == export_id) s->close("disconnected by the server");
  // A session still handshaking that has not looked the export up fails at the lookup.
}

}  // namespace sluice::nbd
