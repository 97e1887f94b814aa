// The streaming PDU receiver (tcp_pdu_reader.h).
#include "nvme/tcp_pdu_reader.h"

#include <algorithm>
#include <cstring>

#include "base/crc32c.h"

namespace sluice::nvme::tcp {

PduReader::State PduReader::state() const {
  switch (phase_) {
    case Phase::wait_buffer: return State::need_buffer;
    case Phase::done: return digest_ok_ ? State::pdu_ready : State::data_digest_error;
    case Phase::failed: return State::failed;
    default: return State::reading;
  }
}

std::span<const uint8_t> PduReader::raw_header() const {
  // The header without its digest; all that came if HLEN itself was the bad field.
  const size_t hlen = header_have_ >= kCommonHeaderSize ? std::max<size_t>(header_[2], kCommonHeaderSize) : 0;
  return {header_, std::min(header_have_, hlen == 0 ? header_have_ : hlen)};
}

size_t PduReader::header_end() const { return header_[2] + ((header_[1] & kFlagHdgst) ? kDigestSize : 0); }

void PduReader::start_next_pdu() {
  phase_ = Phase::common;
  header_have_ = term_have_ = data_have_ = pad_left_ = digest_have_ = 0;
  dest_ = nullptr;
  crc_ = 0;
  digest_ok_ = true;
  error_ = {};
  pdu_ = Pdu{};
}

void PduReader::fail(const PduError& e) {
  error_ = e;
  phase_ = Phase::failed;
}

// The header and its digest are in: check, decode, and decide what comes next.
void PduReader::header_complete() {
  const size_t hlen = header_[2];
  if (header_[1] & kFlagHdgst) {
    if (crc32c(header_, hlen) != get_digest(header_ + hlen)) return fail(Violation::header_digest);
  }
  if (PduError e = decode_header(header_, params_, pdu_); !e.ok()) return fail(e);
  const PduType t = pdu_.type;
  if (t == PduType::ic_req || t == PduType::ic_resp) connected_ = true;
  if (t == PduType::h2c_term_req || t == PduType::c2h_term_req) {
    terminated_ = true;
    phase_ = pdu_.data_length > 0 ? Phase::term_data : Phase::done;
    return;
  }
  phase_ = pdu_.data_length > 0 ? Phase::wait_buffer : Phase::done;
}

void PduReader::data_complete() { phase_ = (pdu_.flags & kFlagDdgst) ? Phase::data_digest : Phase::done; }

bool PduReader::set_data_buffer(std::span<uint8_t> dest) {
  if (phase_ != Phase::wait_buffer || dest.size() != pdu_.data_length || dest.data() == nullptr) return false;
  dest_ = dest.data();
  pad_left_ = pdu_.pdo - header_end();
  phase_ = pad_left_ > 0 ? Phase::padding : Phase::data;
  return true;
}

void PduReader::discard_data() {
  if (phase_ != Phase::wait_buffer) return;
  dest_ = nullptr;
  pad_left_ = pdu_.pdo - header_end();
  phase_ = pad_left_ > 0 ? Phase::padding : Phase::data;
}

std::span<uint8_t> PduReader::data_window() const {
  if (phase_ != Phase::data || dest_ == nullptr) return {};
  return {dest_ + data_have_, pdu_.data_length - data_have_};
}

void PduReader::data_received(size_t n) {
  const std::span<uint8_t> w = data_window();
  n = std::min(n, w.size());
  if (n == 0) return;
  crc_ = crc32c(w.data(), n, crc_);
  data_have_ += n;
  if (data_have_ == pdu_.data_length) data_complete();
}

size_t PduReader::bytes_wanted() const {
  switch (phase_) {
    case Phase::common: return kCommonHeaderSize - header_have_;
    case Phase::header: return header_end() - header_have_;
    case Phase::padding: return pad_left_;
    case Phase::data: return pdu_.data_length - data_have_;
    case Phase::data_digest: return kDigestSize - digest_have_;
    case Phase::term_data: return pdu_.data_length - term_have_;
    default: return 0;
  }
}

size_t PduReader::feed(std::span<const uint8_t> in) {
  if (phase_ == Phase::done) {
    if (terminated_) {
      fail(Violation::after_term_req);
      return 0;
    }
    start_next_pdu();
  }
  size_t used = 0;
  while (used < in.size() && state() == State::reading) {
    const uint8_t* p = in.data() + used;
    const size_t n = std::min(in.size() - used, bytes_wanted());
    switch (phase_) {
      case Phase::common:
        std::memcpy(header_ + header_have_, p, n);
        header_have_ += n;
        if (header_have_ == kCommonHeaderSize) {
          if (PduError e = check_common(header_, role_, connected_, params_); !e.ok())
            fail(e);
          else
            phase_ = Phase::header;
        }
        break;
      case Phase::header:
        std::memcpy(header_ + header_have_, p, n);
        header_have_ += n;
        if (header_have_ == header_end()) header_complete();
        break;
      case Phase::padding:
        pad_left_ -= n;
        if (pad_left_ == 0) phase_ = Phase::data;
        break;
      case Phase::data:
        if (dest_ != nullptr) std::memcpy(dest_ + data_have_, p, n);
        crc_ = crc32c(p, n, crc_);
        data_have_ += n;
        if (data_have_ == pdu_.data_length) data_complete();
        break;
      case Phase::data_digest:
        std::memcpy(digest_ + digest_have_, p, n);
        digest_have_ += n;
        if (digest_have_ == kDigestSize) {
          phase_ = Phase::done;
          if (get_digest(digest_) != crc_) {
            digest_ok_ = false;
            error_ = make_error(Violation::data_digest);
          }
        }
        break;
      case Phase::term_data:
        std::memcpy(term_ + term_have_, p, n);
        term_have_ += n;
        if (term_have_ == pdu_.data_length) phase_ = Phase::done;
        break;
      default: return used;
    }
    used += n;
  }
  return used;
}

}  // namespace sluice::nvme::tcp
