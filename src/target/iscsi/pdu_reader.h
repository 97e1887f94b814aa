// The receiving half of the iSCSI codec: a state machine fed with bytes as recv() returns
// them, in any split, that yields one validated PDU at a time and lets the caller put each
// PDU's data segment where it belongs (a SCSI Data-Out straight into the bdev buffer at its
// BufferOffset) instead of a staging copy. It holds one header (BHS, AHS, digest: at most
// kMaxHeaderSize bytes) and, only when asked to, one small data segment of at most
// `internal_capacity` bytes (login and text key=value data, NOP-Out ping data).
//
//   PduReader rx(Role::target, params);
//   for each chunk: while (!chunk.empty()) {
//     chunk = chunk.subspan(rx.feed(chunk));
//     switch (rx.state()) {
//       case reading: break;                           // (loop ends: chunk used up)
//       case need_buffer:                              // pdu() decoded, its data is due
//         data-out ? rx.set_data_buffer(dest) : rx.use_internal_buffer(); break;
//       case pdu_ready: handle(rx.pdu(), rx.data()); break;
//       case rejected: send_reject(rx.error().reason, rx.bhs()); break;  // PDU skipped whole
//       case data_digest_error: send_reject(data_digest, rx.bhs()); break;
//       case failed: close(); return;                  // error() says why
//     }
//   }
// While data is due for a caller's buffer, data_window() is where the next data bytes go:
// recv() straight into it and report the count with data_received(); bytes_wanted() bounds a
// recv() so that it never reads past the current stage.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "target/iscsi/pdu.h"

namespace sluice::iscsi {

class PduReader {
 public:
  enum class State : uint8_t {
    reading,            // mid-PDU: feed more bytes (or, for data, fill data_window())
    need_buffer,        // pdu() is decoded and carries data: set_data_buffer(), use_internal_buffer()
                        // or discard_data()
    pdu_ready,          // a whole PDU is in; the next feed() starts on the next one
    rejected,           // a whole PDU was skipped; error() says why (not fatal): send a Reject
    data_digest_error,  // as pdu_ready, but the data failed its digest (not fatal)
    failed,             // error() says why; the stream is lost: close the connection
  };

  static constexpr size_t kDefaultInternalCapacity = 64 * 1024;

  PduReader(Role role, const RxParams& params, size_t internal_capacity = kDefaultInternalCapacity)
      : role_(role), params_(params), internal_capacity_(internal_capacity) {}

  // What login agreed (digests from the first PDU after login, MaxRecvDataSegmentLength);
  // call it between PDUs.
  void set_params(const RxParams& params) { params_ = params; }
  const RxParams& params() const { return params_; }

  // Consumes a prefix of `in`; stops early when the state changes to anything but reading.
  size_t feed(std::span<const uint8_t> in);

  State state() const;
  // The current PDU, from need_buffer (or pdu_ready for one without data) until the next feed.
  const Pdu& pdu() const { return pdu_; }
  // The violation, in rejected, data_digest_error or failed state.
  const PduError& error() const { return error_; }
  // The current PDU's BHS as received (up to 48 bytes): the data of a Reject.
  std::span<const uint8_t> bhs() const { return {header_, std::min(header_have_, kBhsSize)}; }
  // The data segment, in pdu_ready, when use_internal_buffer() took it.
  std::span<const uint8_t> data() const;

  // In need_buffer: where the data segment goes; `dest` must be exactly pdu().data_length
  // bytes and stay valid until the PDU is complete. False (and no change) otherwise.
  bool set_data_buffer(std::span<uint8_t> dest);
  // In need_buffer: keep the data in the reader's own buffer (data()). False (and no change)
  // if the segment is longer than its capacity.
  bool use_internal_buffer();
  // In need_buffer: consume the data without keeping it (its digest is still checked).
  void discard_data();

  // While data is due for a buffer: the part not yet filled (empty otherwise: feed() instead).
  std::span<uint8_t> data_window() const;
  // `n` bytes were written into data_window() (at most its size).
  void data_received(size_t n);

  // How many bytes finish the current stage (header, data, padding, digest); 0 unless reading.
  size_t bytes_wanted() const;

 private:
  enum class Phase : uint8_t { bhs, header_rest, wait_buffer, data, padding, data_digest, done, failed };

  void start_next_pdu();
  size_t header_end() const;
  void header_complete();
  void start_data();
  void data_complete();
  void fail(PduError e);

  Role role_;
  RxParams params_;
  size_t internal_capacity_;
  Phase phase_ = Phase::bhs;
  bool skipping_ = false;  // a rejected PDU's data is being consumed
  bool digest_ok_ = true;
  bool internal_ = false;
  PduError error_;
  Pdu pdu_;

  uint8_t header_[kMaxHeaderSize];
  size_t header_have_ = 0;
  std::vector<uint8_t> internal_buffer_;  // grows to at most internal_capacity_

  uint8_t* dest_ = nullptr;  // null while discarding
  size_t data_have_ = 0;
  size_t pad_have_ = 0;
  uint32_t crc_ = 0;
  uint8_t digest_[kDigestSize];
  size_t digest_have_ = 0;
};

}  // namespace sluice::iscsi
