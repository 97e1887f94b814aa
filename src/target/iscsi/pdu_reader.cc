// The streaming PDU receiver (pdu_reader.h).
#include "target/iscsi/pdu_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace sluice::iscsi {

PduReader::State PduReader::state() const {
  switch (phase_) {
    case Phase::wait_buffer: return State::need_buffer;
    case Phase::done:
      if (skipping_) return State::rejected;
      return digest_ok_ ? State::pdu_ready : State::data_digest_error;
    case Phase::failed: return State::failed;
    default: return State::reading;
  }
}

std::span<const uint8_t> PduReader::data() const {
  if (phase_ != Phase::done || !internal_ || skipping_) return {};
  return {internal_buffer_.data(), pdu_.data_length};
}

size_t PduReader::header_end() const {
  return kBhsSize + size_t{header_[4]} * 4 + (params_.header_digest ? kDigestSize : 0);
}

void PduReader::start_next_pdu() {
  phase_ = Phase::bhs;
  header_have_ = data_have_ = pad_have_ = digest_have_ = 0;
  dest_ = nullptr;
  crc_ = 0;
  skipping_ = internal_ = false;
  digest_ok_ = true;
  error_ = {};
  pdu_.data_length = 0;
}

void PduReader::fail(PduError e) {
  error_ = std::move(e);
  phase_ = Phase::failed;
}

// The BHS, AHS and header digest are in: check, decode, and decide what comes next.
void PduReader::header_complete() {
  const size_t hlen = kBhsSize + size_t{header_[4]} * 4;
  if (params_.header_digest) {
    const uint32_t want = header_digest({header_, hlen}), got = get_digest(header_ + hlen);
    if (want != got) {
      pdu_ = Pdu{};  // nothing of an unverified header is to be believed
      char msg[96];
      std::snprintf(msg, sizeof msg, "header digest 0x%08x, computed 0x%08x", got, want);
      return fail({Violation::header_digest, RejectReason::protocol_error, msg});
    }
  }
  PduError e = decode_bhs(header_, role_, params_, pdu_);
  if (e.ok() && pdu_.ahs_length > 0) e = decode_ahs(header_ + kBhsSize, pdu_);
  if (!e.ok()) {
    if (e.fatal()) return fail(std::move(e));
    // The lengths are sane and trusted: skip the whole PDU and let the caller reject it.
    error_ = std::move(e);
    skipping_ = true;
    return start_data();
  }
  phase_ = pdu_.data_length > 0 ? Phase::wait_buffer : Phase::done;
}

void PduReader::start_data() {
  if (pdu_.data_length == 0) {
    phase_ = Phase::done;
    return;
  }
  phase_ = Phase::data;
}

void PduReader::data_complete() {
  if (padding_length(pdu_.data_length) > 0)
    phase_ = Phase::padding;
  else
    phase_ = params_.data_digest ? Phase::data_digest : Phase::done;
}

bool PduReader::set_data_buffer(std::span<uint8_t> dest) {
  if (phase_ != Phase::wait_buffer || dest.size() != pdu_.data_length || dest.data() == nullptr) return false;
  dest_ = dest.data();
  start_data();
  return true;
}

bool PduReader::use_internal_buffer() {
  if (phase_ != Phase::wait_buffer || pdu_.data_length > internal_capacity_) return false;
  if (internal_buffer_.size() < pdu_.data_length) internal_buffer_.resize(pdu_.data_length);
  dest_ = internal_buffer_.data();
  internal_ = true;
  start_data();
  return true;
}

void PduReader::discard_data() {
  if (phase_ != Phase::wait_buffer) return;
  dest_ = nullptr;
  start_data();
}

std::span<uint8_t> PduReader::data_window() const {
  if (phase_ != Phase::data || dest_ == nullptr) return {};
  return {dest_ + data_have_, pdu_.data_length - data_have_};
}

void PduReader::data_received(size_t n) {
  const std::span<uint8_t> w = data_window();
  n = std::min(n, w.size());
  if (n == 0) return;
  crc_ = extend_data_digest(crc_, w.first(n));
  data_have_ += n;
  if (data_have_ == pdu_.data_length) data_complete();
}

size_t PduReader::bytes_wanted() const {
  switch (phase_) {
    case Phase::bhs: return kBhsSize - header_have_;
    case Phase::header_rest: return header_end() - header_have_;
    case Phase::data: return pdu_.data_length - data_have_;
    case Phase::padding: return padding_length(pdu_.data_length) - pad_have_;
    case Phase::data_digest: return kDigestSize - digest_have_;
    default: return 0;
  }
}

size_t PduReader::feed(std::span<const uint8_t> in) {
  if (phase_ == Phase::done) start_next_pdu();
  size_t used = 0;
  while (used < in.size() && state() == State::reading) {
    const uint8_t* p = in.data() + used;
    const size_t n = std::min(in.size() - used, bytes_wanted());
    switch (phase_) {
      case Phase::bhs:
      case Phase::header_rest:
        std::memcpy(header_ + header_have_, p, n);
        header_have_ += n;
        if (header_have_ == header_end()) {
          header_complete();
        } else if (phase_ == Phase::bhs && header_have_ == kBhsSize) {
          phase_ = Phase::header_rest;
        }
        break;
      case Phase::data:
        if (dest_ != nullptr) std::memcpy(dest_ + data_have_, p, n);
        if (!skipping_) crc_ = extend_data_digest(crc_, {p, n});
        data_have_ += n;
        if (data_have_ == pdu_.data_length) data_complete();
        break;
      case Phase::padding:
        if (!skipping_) crc_ = extend_data_digest(crc_, {p, n});
        pad_have_ += n;
        if (pad_have_ == padding_length(pdu_.data_length))
          phase_ = params_.data_digest ? Phase::data_digest : Phase::done;
        break;
      case Phase::data_digest:
        std::memcpy(digest_ + digest_have_, p, n);
        digest_have_ += n;
        if (digest_have_ == kDigestSize) {
          phase_ = Phase::done;
          if (!skipping_ && get_digest(digest_) != crc_) {
            digest_ok_ = false;
            char msg[96];
            std::snprintf(msg, sizeof msg, "data digest 0x%08x, computed 0x%08x over %u bytes", get_digest(digest_),
                          crc_, pdu_.data_length);
            error_ = {Violation::data_digest, RejectReason::data_digest, msg};
          }
        }
        break;
      default: return used;
    }
    used += n;
  }
  return used;
}

}  // namespace sluice::iscsi
