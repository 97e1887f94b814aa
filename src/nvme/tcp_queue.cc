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

}  // namespace

Result<std::unique_ptr<HostQueue>> HostQueue::start(const net::ListenAddress& address, uint32_t entries,
                                                    const QueueOptions& options) {
  if (entries < 2 || entries > 65536) return Status(Errc::invalid_argument, "an NVMe/TCP queue has 2 to 65536 entries");
  auto fd = net::start_connect(address);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<HostQueue>(new HostQueue(*fd, address.to_string(), entries, options));
}

Result<std::unique_ptr<HostQueue>> HostQueue::open(const net::ListenAddress& address, uint32_t entries,
                                                   const QueueOptions& options) {
  auto q = start(address, entries, options);
  if (!q.ok()) return q.status();
  HostQueue& h = **q;
  while (!h.ready()) {  // bounded: the setup deadline fails the queue
    if (h.failed()) return Status(Errc::io_error, fmt::format("nvme-tcp {}: {}", h.peer_, h.error_));
    h.poll();
    if (!h.ready() && !h.failed()) {
      pollfd p{h.fd_, static_cast<short>(h.phase_ == Phase::connecting ? POLLOUT : POLLIN), 0};
      (void)::poll(&p, 1, 1);
    }
  }
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
  unsent_.reserve(slots_.size());
  if (options.command_timeout_ms != 0)
    timeout_ticks_ = static_cast<uint64_t>(clock::ticks_per_second() * (options.command_timeout_ms / 1000.0));
  setup_deadline_ns_ = clock::now_ns() + options.connect_timeout_ms * 1000000;
}

HostQueue::~HostQueue() {
  if (fd_ >= 0) ::close(fd_);
}

void HostQueue::check_connected() {
  Status st = net::connect_finished(fd_);
  if (st.code() == Errc::busy) return check_setup_deadline();
  if (!st.ok()) return fail(fmt::format("connect: {}", st.message()));
  IcReq req;
  req.digest = (options_.header_digest ? kDigestHeader : 0) | (options_.data_digest ? kDigestData : 0);
  req.maxr2t = 0;  // one R2T outstanding per command
  queue_bytes(ic_req_, build_ic_req(ic_req_, req));
  phase_ = Phase::ic;
}

void HostQueue::check_setup_deadline() {
  if (clock::now_ns() < setup_deadline_ns_) return;
  fail(phase_ == Phase::connecting ? fmt::format("connecting: no answer within {} ms", options_.connect_timeout_ms)
                                   : fmt::format("no ICResp within {} ms", options_.connect_timeout_ms));
}

// The ICResp is in (nothing follows it: the controller waits for commands), so the digests
// and the alignment it agreed apply from the next byte on; the commands that waited go out.
void HostQueue::on_ic_resp() {
  ic_resp_ = rx_.pdu().ic_resp;
  const uint8_t asked = (options_.header_digest ? kDigestHeader : 0) | (options_.data_digest ? kDigestData : 0);
  if (ic_resp_.digest != asked)
    return fail(fmt::format("the controller enabled digests {:#x}, not the {:#x} asked for", ic_resp_.digest, asked));
  RxParams p = rx_.params();
  p.header_digest = options_.header_digest;
  p.data_digest = options_.data_digest;
  rx_.set_params(p);
  tx_.header_digest = options_.header_digest;
  tx_.data_digest = options_.data_digest;
  tx_.pda = ic_resp_.cpda;
  phase_ = Phase::ready;
  for (uint16_t cid : unsent_)
    if (slots_[cid].busy) queue_capsule(slots_[cid]);
  unsent_.clear();
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

  s.sqe = sqe_in;
  s.sqe.cid = s.cid;
  if (cid != nullptr) *cid = s.cid;
  if (phase_ == Phase::ready) {
    queue_capsule(s);
  } else {
    unsent_.push_back(s.cid);  // the capsule's digests are not known before the ICResp
  }
  ++outstanding_;
  ++stats_.submitted;
  return Errc::ok;
}

void HostQueue::queue_capsule(Slot& s) {
  spec::Sqe& sqe = s.sqe;
  sqe.flags = static_cast<uint8_t>((sqe.flags & ~0xc0) | kPsdtSgl);
  const bool in_capsule = s.to_controller && s.bytes <= options_.in_capsule_bytes;
  sqe.prp1 = 0;  // the SGL's address: offset 0 into the capsule's data, or none
  sqe.prp2 = uint64_t{s.bytes} | uint64_t{in_capsule ? kSglInCapsule : kSglTransport} << 56;
  if (s.bytes == 0) sqe.prp2 = 0;
  queue_bytes(s.header, build_capsule_cmd(s.header, tx_, sqe, in_capsule ? s.bytes : 0));
  if (in_capsule) queue_data(s, 0, s.bytes, s.digest);
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

void HostQueue::Waiter::on_done(void* arg, const Completion& c) {
  auto* w = static_cast<Waiter*>(arg);
  w->c = c;
  w->done = true;
}

// Bounded: a command past its timeout (or a setup past its deadline) fails the queue, which
// completes it.
void HostQueue::wait_for(const Waiter& w) {
  while (!w.done) {
    if (poll() == 0 && !w.done && fd_ >= 0) {
      pollfd p{fd_, POLLIN, 0};
      (void)::poll(&p, 1, 1);
    }
  }
}

Result<Completion> HostQueue::execute(const spec::Sqe& sqe, void* data, size_t len) {
  Waiter w;
  iovec iov{data, len};
  const Errc e = submit(sqe, &iov, len != 0 ? 1 : 0, Waiter::on_done, &w);
  if (e != Errc::ok) return Status(e, failed() ? fmt::format("nvme-tcp {}: {}", peer_, error_) : "the queue is full");
  wait_for(w);
  if (w.c.reset_aborted) return Status(Errc::io_error, fmt::format("nvme-tcp {}: {}", peer_, error_));
  return w.c;
}

Errc HostQueue::submit_connect(uint16_t qid, std::string_view subnqn, std::string_view hostnqn, uint16_t cntlid,
                               uint32_t kato_ms, CommandCallback cb, void* arg) {
  namespace cn = spec::connect;
  if (subnqn.size() >= cn::kNqnField || hostnqn.size() >= cn::kNqnField) return Errc::invalid_argument;
  connect_data_.assign(cn::kDataSize, 0);
  // HOSTID: a stable identity for this host process is not kept yet; the NQN names the host.
  spec::put<uint16_t>(connect_data_.data(), cn::kCntlid, cntlid);
  std::memcpy(connect_data_.data() + cn::kSubnqn, subnqn.data(), subnqn.size());
  std::memcpy(connect_data_.data() + cn::kHostnqn, hostnqn.data(), hostnqn.size());
  spec::Sqe sqe{};
  sqe.opc = spec::kFabricsOpcode;
  sqe.nsid = spec::kFctypeConnect;
  sqe.cdw10 = uint32_t{qid} << 16;
  const uint8_t cattr = options_.disable_sq_flow_control ? cn::kCattrDisableSqFlowControl : 0;
  sqe.cdw11 = capacity() | uint32_t{cattr} << 16;  // SQSIZE is 0's based: entries - 1
  sqe.cdw12 = kato_ms;
  connect_iov_ = {connect_data_.data(), connect_data_.size()};
  return submit(sqe, &connect_iov_, 1, cb, arg);
}

Status HostQueue::connect_status(const Completion& c, uint16_t qid, std::string_view subnqn,
                                 std::string_view hostnqn) const {
  if (c.reset_aborted) return Status(Errc::io_error, fmt::format("Connect (queue {} of {}): {}", qid, subnqn, error_));
  if (c.sct() == spec::kSctCommandSpecific && c.sc() >= 0x80 && c.sc() <= 0x84) {
    // Connect's own status codes (NVMe-oF 1.1, 3.3.1), which status_text() cannot tell from
    // other commands' codes of the same value.
    std::string why;
    switch (c.sc()) {
      case 0x80: why = "incompatible format"; break;
      case 0x81: why = "the controller is busy"; break;
      case 0x82:
        why = fmt::format("invalid parameters (the field at byte {} of its {})", c.dw0 >> 16,
                          (c.dw0 & 1) ? "data" : "command");
        break;
      case 0x83: why = "restart discovery"; break;
      default: why = fmt::format("host {} is not allowed on the subsystem", hostnqn); break;
    }
    return Status(Errc::io_error, fmt::format("Connect (queue {} of {}): {}", qid, subnqn, why));
  }
  return completion_status(c, fmt::format("Connect (queue {} of {})", qid, subnqn));
}

Result<uint16_t> HostQueue::connect(uint16_t qid, std::string_view subnqn, std::string_view hostnqn, uint16_t cntlid,
                                    uint32_t kato_ms) {
  Waiter w;
  const Errc e = submit_connect(qid, subnqn, hostnqn, cntlid, kato_ms, Waiter::on_done, &w);
  if (e == Errc::invalid_argument) return Status(e, "an NQN is at most 255 bytes");
  if (e != Errc::ok) return Status(e, failed() ? fmt::format("nvme-tcp {}: {}", peer_, error_) : "the queue is full");
  wait_for(w);
  SLUICE_RETURN_IF_ERROR(connect_status(w.c, qid, subnqn, hostnqn));
  return static_cast<uint16_t>(w.c.dw0);
}

}  // namespace sluice::nvme::tcp
