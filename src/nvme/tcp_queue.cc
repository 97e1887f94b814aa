// The host queue's setup and sending side: the IC exchange, command capsules (with in-capsule
// data), H2CData for each R2T, all written with sendmsg straight from the callers' buffers.
#include "nvme/tcp_queue.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include <fmt/format.h>

#include "base/clock.h"

namespace sluice::nvme::tcp {
namespace {

constexpr size_t kStagingBytes = 64 << 10;
constexpr uint8_t kPsdtSgl = 0x40;  // SQE flags: the data pointer is an SGL
// SGL descriptor types (byte 15): in-capsule data (Data Block, Offset) or data the controller
// transfers later (Transport Data Block, Transport-specific).
constexpr uint8_t kSglInCapsule = 0x01, kSglTransport = 0x5a;

// Which way a command's data goes, from its opcode (a fabrics command: its FCTYPE).
bool data_to_controller(const spec::Sqe& sqe) {
  const uint8_t code = sqe.opc == spec::kFabricsOpcode ? spec::fabrics_type(sqe) : sqe.opc;
  return (code & 3) == 1;
}

// Sends and receives whole messages on a blocking schedule with a deadline: only for the IC
// exchange, before the queue is polled.
bool wait_ready(int fd, short events, uint64_t deadline_ns) {
  for (;;) {
    const uint64_t now = clock::now_ns();
    if (now >= deadline_ns) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>((deadline_ns - now + 999999) / 1000000));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

Result<std::unique_ptr<HostQueue>> HostQueue::open(const net::ListenAddress& address, uint32_t entries,
                                                   const QueueOptions& options) {
  if (entries < 2 || entries > 65536) return Status(Errc::invalid_argument, "an NVMe/TCP queue has 2 to 65536 entries");
  auto fd = net::connect_stream(address, options.connect_timeout_ms);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<HostQueue> q(new HostQueue(*fd, address.to_string(), entries, options));
  Status st = q->exchange_ic();
  if (!st.ok()) return Status(st.code(), fmt::format("nvme-tcp {}: {}", q->peer_, st.message()));
  return q;
}

HostQueue::HostQueue(int fd, std::string peer, uint32_t entries, const QueueOptions& options)
    : fd_(fd), peer_(std::move(peer)), options_(options), staging_(kStagingBytes) {
  RxParams p;
  p.max_plen = std::max<uint32_t>(p.max_plen, options.max_transfer_bytes + 2 * kMaxHeaderSize);
  rx_.set_params(p);
  slots_.resize(entries - 1);
  free_cids_.reserve(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].cid = static_cast<uint16_t>(i);
    free_cids_.push_back(static_cast<uint16_t>(slots_.size() - 1 - i));  // cid 0 first
  }
  h2c_ready_.reserve(slots_.size());
  if (options.command_timeout_ms != 0)
    timeout_ticks_ = static_cast<uint64_t>(clock::ticks_per_second() * (options.command_timeout_ms / 1000.0));
}

HostQueue::~HostQueue() {
  if (fd_ >= 0) ::close(fd_);
}

Status HostQueue::exchange_ic() {
  IcReq req;
  req.digest = (options_.header_digest ? kDigestHeader : 0) | (options_.data_digest ? kDigestData : 0);
  req.maxr2t = 0;  // one R2T outstanding per command
  uint8_t out[kMaxBuiltSize];
  const size_t n = build_ic_req(out, req);
  const uint64_t deadline = clock::now_ns() + options_.connect_timeout_ms * 1000000;
  for (size_t sent = 0; sent < n;) {
    if (!wait_ready(fd_, POLLOUT, deadline)) return Status(Errc::io_error, "timed out sending ICReq");
    const ssize_t w = ::send(fd_, out + sent, n - sent, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return Status(Errc::io_error, fmt::format("send: {}", std::strerror(errno)));
    if (w > 0) sent += static_cast<size_t>(w);
  }
  // Byte by byte through the reader up to the ICResp's end, so that nothing after it (there
  // is nothing yet) is consumed before the digests are set.
  while (rx_.state() != PduReader::State::pdu_ready) {
    if (rx_.state() == PduReader::State::failed)
      return Status(Errc::io_error, fmt::format("bad ICResp: {}", violation_name(rx_.error().what)));
    if (rx_.state() == PduReader::State::need_buffer) {
      rx_.discard_data();
      continue;
    }
    const size_t want = std::max<size_t>(rx_.bytes_wanted(), 1);
    if (!wait_ready(fd_, POLLIN, deadline)) return Status(Errc::io_error, "no ICResp within the connect timeout");
    const ssize_t r = ::recv(fd_, staging_.data(), std::min(want, staging_.size()), 0);
    if (r == 0) return Status(Errc::io_error, "the controller closed the connection during the IC exchange");
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Status(Errc::io_error, fmt::format("recv: {}", std::strerror(errno)));
    }
    for (size_t off = 0; off < static_cast<size_t>(r);)
      off += rx_.feed({staging_.data() + off, static_cast<size_t>(r) - off});
  }
  if (rx_.pdu().type != PduType::ic_resp)
    return Status(Errc::io_error, "the controller answered ICReq with something else");
  ic_resp_ = rx_.pdu().ic_resp;
  if (ic_resp_.digest != req.digest)
    return Status(Errc::not_supported, fmt::format("the controller enabled digests {:#x}, not the {:#x} asked for",
                                                   ic_resp_.digest, req.digest));
  RxParams p = rx_.params();
  p.header_digest = options_.header_digest;
  p.data_digest = options_.data_digest;
  rx_.set_params(p);
  tx_.header_digest = options_.header_digest;
  tx_.data_digest = options_.data_digest;
  tx_.pda = ic_resp_.cpda;
  return Status::Ok();
}

Errc HostQueue::submit(const spec::Sqe& sqe_in, const iovec* iov, int iovcnt, CommandCallback cb, void* arg,
                       uint16_t* cid) {
  if (failed()) return Errc::io_error;
  if (iovcnt < 0 || (iovcnt > 0 && iov == nullptr)) return Errc::invalid_argument;
  uint64_t bytes = 0;
  for (int i = 0; i < iovcnt; ++i) bytes += iov[i].iov_len;
  if (bytes > UINT32_MAX) return Errc::invalid_argument;
  if (free_cids_.empty()) return Errc::busy;
  Slot& s = slots_[free_cids_.back()];
  free_cids_.pop_back();
  s.busy = true;
  s.cb = cb;
  s.arg = arg;
  s.iov = iov;
  s.iovcnt = iovcnt;
  s.bytes = static_cast<uint32_t>(bytes);
  s.to_controller = bytes != 0 && data_to_controller(sqe_in);
  s.data_error = false;
  s.h2c_next = s.h2c_end = 0;
  s.h2c_queued = false;
  s.deadline = timeout_ticks_ != 0 ? clock::ticks() + timeout_ticks_ : 0;

  spec::Sqe sqe = sqe_in;
  sqe.cid = s.cid;
  if (cid != nullptr) *cid = s.cid;
  sqe.flags = static_cast<uint8_t>((sqe.flags & ~0xc0) | kPsdtSgl);
  const bool in_capsule = s.to_controller && s.bytes <= options_.in_capsule_bytes;
  sqe.prp1 = 0;  // the SGL's address: offset 0 into the capsule's data, or none
  sqe.prp2 = uint64_t{s.bytes} | uint64_t{in_capsule ? kSglInCapsule : kSglTransport} << 56;
  if (s.bytes == 0) sqe.prp2 = 0;
  queue_bytes(s.header, build_capsule_cmd(s.header, tx_, sqe, in_capsule ? s.bytes : 0));
  if (in_capsule) queue_data(s, 0, s.bytes, s.digest);
  ++outstanding_;
  ++stats_.submitted;
  return Errc::ok;
}

void HostQueue::queue_bytes(const void* p, size_t len) {
  if (len != 0) tx_iov_.push_back({const_cast<void*>(p), len});
}

// The part [offset, offset + len) of the slot's data, then its digest (written to `digest`)
// when data digests are on.
void HostQueue::queue_data(const Slot& s, uint32_t offset, uint32_t len, uint8_t* digest) {
  uint32_t crc = 0;
  uint64_t at = 0;
  for (int i = 0; i < s.iovcnt && len != 0; ++i) {
    const uint64_t seg = s.iov[i].iov_len;
    if (offset >= at + seg) {
      at += seg;
      continue;
    }
    const uint64_t skip = offset - at;
    const auto n = static_cast<uint32_t>(std::min<uint64_t>(seg - skip, len));
    auto* p = static_cast<uint8_t*>(s.iov[i].iov_base) + skip;
    queue_bytes(p, n);
    if (tx_.data_digest) crc = data_digest({p, n}, crc);
    offset += n;
    len -= n;
    at += seg;
  }
  if (tx_.data_digest) {
    put_digest(digest, crc);
    queue_bytes(digest, kDigestSize);
  }
}

// Queues the next H2CData PDU (at most MAXH2CDATA bytes) of the first slot with R2T'd data
// left. One at a time, so that the slot's one header buffer is free again by then.
bool HostQueue::refill_h2c() {
  while (!h2c_ready_.empty()) {
    Slot& s = slots_[h2c_ready_.front()];
    if (!s.busy || s.h2c_next >= s.h2c_end) {
      s.h2c_queued = false;
      h2c_ready_.erase(h2c_ready_.begin());
      continue;
    }
    DataHeader h;
    h.cccid = s.cid;
    h.ttag = s.ttag;
    h.datao = s.h2c_next;
    h.datal = std::min(s.h2c_end - s.h2c_next, ic_resp_.maxh2cdata);
    h.last = s.h2c_next + h.datal == s.h2c_end;
    queue_bytes(s.header, build_data(s.header, Role::host, tx_, h));
    queue_data(s, h.datao, h.datal, s.digest);
    s.h2c_next += h.datal;
    ++stats_.h2c_pdus;
    return true;
  }
  return false;
}

// Writes as much as the socket takes. False: the connection failed (fail() has run).
bool HostQueue::flush() {
  for (;;) {
    if (tx_head_ == tx_iov_.size()) {
      tx_iov_.clear();
      tx_head_ = 0;
      if (!refill_h2c()) return true;
    }
    msghdr m{};
    m.msg_iov = tx_iov_.data() + tx_head_;
    m.msg_iovlen = std::min<size_t>(tx_iov_.size() - tx_head_, IOV_MAX);
    const ssize_t w = ::sendmsg(fd_, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    ++stats_.sendmsgs;
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      if (errno == EINTR) continue;
      fail(fmt::format("send: {}", std::strerror(errno)));
      return false;
    }
    for (auto left = static_cast<size_t>(w); left != 0;) {
      iovec& v = tx_iov_[tx_head_];
      if (left >= v.iov_len) {
        left -= v.iov_len;
        ++tx_head_;
      } else {
        v.iov_base = static_cast<uint8_t*>(v.iov_base) + left;
        v.iov_len -= left;
        left = 0;
      }
    }
  }
}

Result<Completion> HostQueue::execute(const spec::Sqe& sqe, void* data, size_t len) {
  struct Wait {
    bool done = false;
    Completion c;
  } wait;
  iovec iov{data, len};
  const Errc e = submit(
      sqe, &iov, len != 0 ? 1 : 0,
      [](void* arg, const Completion& c) {
        auto* w = static_cast<Wait*>(arg);
        w->c = c;
        w->done = true;
      },
      &wait);
  if (e != Errc::ok) return Status(e, failed() ? fmt::format("nvme-tcp {}: {}", peer_, error_) : "the queue is full");
  // Bounded: a command past its timeout fails the queue, which completes it.
  while (!wait.done) {
    if (poll() == 0 && !wait.done) {
      pollfd p{fd_, POLLIN, 0};
      if (fd_ >= 0) (void)::poll(&p, 1, 1);
    }
  }
  if (wait.c.reset_aborted) return Status(Errc::io_error, fmt::format("nvme-tcp {}: {}", peer_, error_));
  return wait.c;
}

Result<uint16_t> HostQueue::connect(uint16_t qid, std::string_view subnqn, std::string_view hostnqn, uint16_t cntlid,
                                    uint32_t kato_ms) {
  namespace cn = spec::connect;
  if (subnqn.size() >= cn::kNqnField || hostnqn.size() >= cn::kNqnField)
    return Status(Errc::invalid_argument, "an NQN is at most 255 bytes");
  std::vector<uint8_t> data(cn::kDataSize);
  // HOSTID: a stable identity for this host process is not kept yet; the NQN names the host.
  spec::put<uint16_t>(data.data(), cn::kCntlid, cntlid);
  std::memcpy(data.data() + cn::kSubnqn, subnqn.data(), subnqn.size());
  std::memcpy(data.data() + cn::kHostnqn, hostnqn.data(), hostnqn.size());
  spec::Sqe sqe{};
  sqe.opc = spec::kFabricsOpcode;
  sqe.nsid = spec::kFctypeConnect;
  sqe.cdw10 = uint32_t{qid} << 16;
  const uint8_t cattr = options_.disable_sq_flow_control ? cn::kCattrDisableSqFlowControl : 0;
  sqe.cdw11 = capacity() | uint32_t{cattr} << 16;  // SQSIZE is 0's based: entries - 1
  sqe.cdw12 = kato_ms;
  auto c = execute(sqe, data.data(), data.size());
  if (!c.ok()) return c.status();
  if (c->sct() == spec::kSctCommandSpecific && c->sc() >= 0x80 && c->sc() <= 0x84) {
    // Connect's own status codes (NVMe-oF 1.1, 3.3.1), which status_text() cannot tell from
    // other commands' codes of the same value.
    std::string why;
    switch (c->sc()) {
      case 0x80: why = "incompatible format"; break;
      case 0x81: why = "the controller is busy"; break;
      case 0x82:
        why = fmt::format("invalid parameters (the field at byte {} of its {})", c->dw0 >> 16,
                          (c->dw0 & 1) ? "data" : "command");
        break;
      case 0x83: why = "restart discovery"; break;
      default: why = fmt::format("host {} is not allowed on the subsystem", hostnqn); break;
    }
    return Status(Errc::io_error, fmt::format("Connect (queue {} of {}): {}", qid, subnqn, why));
  }
  SLUICE_RETURN_IF_ERROR(completion_status(*c, fmt::format("Connect (queue {} of {})", qid, subnqn)));
  return static_cast<uint16_t>(c->dw0);
}

}  // namespace sluice::nvme::tcp
