// The host queue's receiving side: PDUs from the controller through the codec's reader, read
// data placed straight into the command's buffers (large data is received into them without
// staging), R2Ts turned into H2CData, completions, and failing the queue.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/log.h"
#include "nvme/tcp_queue.h"

namespace sluice::nvme::tcp {
namespace {

// Data at least this large goes from the socket straight into the command's buffer.
constexpr size_t kDirectRecvBytes = 16 << 10;
// Bounds one poll's reading, so that a fast controller cannot keep poll() from returning.
constexpr int kRecvRounds = 16;
constexpr uint64_t kTimeoutCheckNs = 1000000;

}  // namespace

int HostQueue::poll() {
  if (failed()) return 0;
  const uint64_t before = stats_.completed;
  if (phase_ == Phase::connecting) check_connected();
  if (!failed() && phase_ != Phase::connecting && flush() && (outstanding_ != 0 || phase_ == Phase::ic) &&
      receive()) {
    (void)flush();  // H2CData for the R2Ts just received; the commands that waited for the ICResp
    if (phase_ == Phase::ic) {
      check_setup_deadline();
    } else if (timeout_ticks_ != 0 && outstanding_ != 0) {
      check_timeouts();
    }
  }
  return static_cast<int>(stats_.completed - before);
}

// False: the queue failed.
bool HostQueue::receive() {
  for (int round = 0; round < kRecvRounds; ++round) {
    if (stage_off_ == stage_len_) {
      // Straight into the command's buffer when a large data transfer is under way.
      const std::span<uint8_t> window = rx_.data_window();
      if (window.size() >= kDirectRecvBytes) {
        const ssize_t r = ::recv(fd_, window.data(), window.size(), MSG_DONTWAIT);
        ++stats_.recvs;
        if (r > 0) {
          rx_.data_received(static_cast<size_t>(r));
          if (rx_.state() != PduReader::State::reading && !on_pdu()) return false;
          continue;
        }
        if (r == 0) return fail("the controller closed the connection"), false;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        if (errno == EINTR) continue;
        return fail(fmt::format("recv: {}", std::strerror(errno))), false;
      }
      const ssize_t r = ::recv(fd_, staging_.data(), staging_.size(), MSG_DONTWAIT);
      ++stats_.recvs;
      if (r == 0) return fail("the controller closed the connection"), false;
      if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        if (errno == EINTR) continue;
        return fail(fmt::format("recv: {}", std::strerror(errno))), false;
      }
      stage_off_ = 0;
      stage_len_ = static_cast<size_t>(r);
    }
    while (stage_off_ < stage_len_) {
      stage_off_ += rx_.feed({staging_.data() + stage_off_, stage_len_ - stage_off_});
      if (rx_.state() != PduReader::State::reading && !on_pdu()) return false;
      if (failed()) return false;
    }
  }
  return true;
}

// Acts on the reader's state after a feed. False: the queue failed.
bool HostQueue::on_pdu() {
  switch (rx_.state()) {
    case PduReader::State::reading: return true;
    case PduReader::State::need_buffer: return on_need_buffer();
    case PduReader::State::failed:
      fail(fmt::format("protocol error from the controller: {}", violation_name(rx_.error().what)));
      return false;
    case PduReader::State::data_digest_error:
    case PduReader::State::pdu_ready: break;
  }
  const Pdu& pdu = rx_.pdu();
  const bool digest_error = rx_.state() == PduReader::State::data_digest_error;
  auto slot_of = [&](uint16_t cid) -> Slot* {
    if (cid >= slots_.size() || !slots_[cid].busy) return nullptr;
    return &slots_[cid];
  };
  switch (pdu.type) {
    case PduType::capsule_resp: {
      Slot* s = slot_of(pdu.cqe.cid);
      if (s == nullptr)
        return fail(fmt::format("a completion for cid {}, which is not outstanding", pdu.cqe.cid)), false;
      Completion c;
      c.status = static_cast<uint16_t>(pdu.cqe.status & ~1u);
      c.dw0 = pdu.cqe.dw0;
      c.dw1 = pdu.cqe.dw1;
      if (s->data_error && c.status == 0) c.status = spec::make_status(spec::kSctGeneric, spec::kScDataTransferError);
      finish(*s, c);
      return true;
    }
    case PduType::c2h_data: {
      ++stats_.c2h_pdus;
      Slot* s = slot_of(pdu.data.cccid);
      if (s == nullptr) return fail("C2HData for a command that is not outstanding"), false;
      if (scratch_slot_ == s) {  // it straddled segments: scatter the copy
        uint32_t off = scratch_offset_, done = 0;
        uint64_t at = 0;
        for (int i = 0; i < s->iovcnt && done < pdu.data.datal; ++i) {
          const uint64_t seg = s->iov[i].iov_len;
          if (off >= at + seg) {
            at += seg;
            continue;
          }
          const uint64_t skip = off - at;
          const auto n = static_cast<uint32_t>(std::min<uint64_t>(seg - skip, pdu.data.datal - done));
          std::memcpy(static_cast<uint8_t*>(s->iov[i].iov_base) + skip, scratch_.data() + done, n);
          done += n;
          off += n;
          at += seg;
        }
        scratch_slot_ = nullptr;
      }
      if (digest_error) s->data_error = true;
      if (pdu.data.success) {
        ++stats_.success_in_data;
        Completion c;
        if (s->data_error) c.status = spec::make_status(spec::kSctGeneric, spec::kScDataTransferError);
        finish(*s, c);
      }
      return true;
    }
    case PduType::r2t: {
      ++stats_.r2ts;
      Slot* s = slot_of(pdu.r2t.cccid);
      if (s == nullptr || !s->to_controller || uint64_t{pdu.r2t.r2to} + pdu.r2t.r2tl > s->bytes || pdu.r2t.r2tl == 0)
        return fail(fmt::format("an R2T for cid {} outside its command's data", pdu.r2t.cccid)), false;
      s->ttag = pdu.r2t.ttag;
      s->h2c_next = pdu.r2t.r2to;
      s->h2c_end = pdu.r2t.r2to + pdu.r2t.r2tl;
      if (!s->h2c_queued) {
        s->h2c_queued = true;
        h2c_ready_.push_back(s->cid);
      }
      return true;
    }
    case PduType::ic_resp:
      if (phase_ != Phase::ic) return fail("a second ICResp"), false;
      on_ic_resp();
      return !failed();
    case PduType::c2h_term_req:
      fail(fmt::format("the controller ended the connection (C2HTermReq, FES {:#x})", pdu.term.fes));
      return false;
    default: fail(fmt::format("unexpected {} PDU", pdu_type_name(static_cast<uint8_t>(pdu.type)))); return false;
  }
}

// A C2HData's data goes into its command's buffer at DATAO: straight into the segment that
// holds it all, or into scratch when it straddles segments.
bool HostQueue::on_need_buffer() {
  const Pdu& pdu = rx_.pdu();
  if (pdu.type != PduType::c2h_data) {
    rx_.discard_data();
    return true;
  }
  if (pdu.data.cccid >= slots_.size() || !slots_[pdu.data.cccid].busy)
    return fail(fmt::format("C2HData for cid {}, which is not outstanding", pdu.data.cccid)), false;
  Slot& s = slots_[pdu.data.cccid];
  const uint64_t end = uint64_t{pdu.data.datao} + pdu.data.datal;
  if (s.to_controller || end > s.bytes)
    return fail(fmt::format("C2HData for cid {} outside its command's data", s.cid)), false;
  uint64_t at = 0;
  for (int i = 0; i < s.iovcnt; ++i) {
    const uint64_t seg = s.iov[i].iov_len;
    if (pdu.data.datao >= at && end <= at + seg) {
      rx_.set_data_buffer({static_cast<uint8_t*>(s.iov[i].iov_base) + (pdu.data.datao - at), pdu.data.datal});
      return true;
    }
    at += seg;
  }
  ++stats_.bounces;
  scratch_.resize(pdu.data.datal);
  scratch_slot_ = &s;
  scratch_offset_ = pdu.data.datao;
  rx_.set_data_buffer({scratch_.data(), pdu.data.datal});
  return true;
}

void HostQueue::finish(Slot& s, Completion c) {
  CommandCallback cb = s.cb;
  void* arg = s.arg;
  s.busy = false;
  s.cb = nullptr;
  free_cids_.push_back(s.cid);
  --outstanding_;
  ++stats_.completed;
  if (!c.ok()) ++stats_.errors;
  if (cb != nullptr) cb(arg, c);
}

// A command past its deadline: the controller is not answering this queue, and a TCP queue
// has no Abort of its own that could get through, so the queue fails (the controller decides
// whether to reconnect).
void HostQueue::check_timeouts() {
  const uint64_t now = clock::ticks();
  if (now < next_timeout_check_) return;
  next_timeout_check_ = now + static_cast<uint64_t>(clock::ticks_per_second() * (kTimeoutCheckNs / 1e9));
  for (Slot& s : slots_) {
    if (s.busy && s.deadline != 0 && now >= s.deadline) {
      fail(fmt::format("command {} got no answer within {} ms", s.cid, options_.command_timeout_ms));
      return;
    }
  }
}

// Closes the connection and completes every outstanding command as aborted.
void HostQueue::fail(std::string why) {
  if (fd_ < 0) return;
  log::warn("nvme-tcp {}: {}", peer_, why);
  error_ = std::move(why);
  ::close(fd_);
  fd_ = -1;
  tx_iov_.clear();
  tx_head_ = 0;
  h2c_ready_.clear();
  scratch_slot_ = nullptr;
  const uint64_t now = clock::ticks();
  for (Slot& s : slots_) {
    if (!s.busy) continue;
    Completion c;
    c.reset_aborted = true;
    c.timed_out = s.deadline != 0 && now >= s.deadline;
    finish(s, c);
  }
}

}  // namespace sluice::nvme::tcp
