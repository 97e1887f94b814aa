// The receiving half of the NVMe/TCP codec: a state machine fed with bytes as recv() returns
// them, in any split, that yields one validated PDU at a time and lets the caller put each
// PDU's data where it belongs (a bdev buffer at the H2CData's DATAO) instead of a staging
// copy. It holds at most one header and one TermReq's data; it never allocates.
//
//   PduReader rx(Role::controller, params);
//   for each chunk: while (!chunk.empty()) {
//     chunk = chunk.subspan(rx.feed(chunk));
//     switch (rx.state()) {
//       case reading: break;                          // (loop ends: chunk used up)
//       case need_buffer: rx.set_data_buffer(dest_for(rx.pdu())); break;
//       case pdu_ready: handle(rx.pdu()); break;      // after an IC PDU: rx.set_params(...)
//       case data_digest_error: fail_command(rx.pdu()); break;
//       case failed: send_term_req(rx.error(), rx.raw_header()); close(); return;
//     }
//   }
// While data is due, data_window() is where the next data bytes go: recv() straight into it
// and report the count with data_received(); bytes_wanted() bounds a recv() so that it never
// reads past the current stage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "nvme/tcp_pdu.h"

namespace sluice::nvme::tcp {

class PduReader {
 public:
  enum class State : uint8_t {
    reading,            // mid-PDU: feed more bytes (or, for data, fill data_window())
    need_buffer,        // pdu() is decoded and carries data: set_data_buffer() or discard_data()
    pdu_ready,          // a whole PDU is in; the next feed() starts on the next one
    data_digest_error,  // as pdu_ready, but the data failed its digest: fail that command
    failed,             // error() says why; the connection is over
  };

  PduReader(Role role, const RxParams& params) : role_(role), params_(params) {}

  // What the IC exchange agreed; call it once the ICReq (controller) or ICResp (host) is in
  // and before feeding the next byte.
  void set_params(const RxParams& params) { params_ = params; }
  const RxParams& params() const { return params_; }

  // Consumes a prefix of `in`; stops early when the state changes to anything but reading.
  size_t feed(std::span<const uint8_t> in);

  State state() const;
  // The current PDU, from need_buffer (or pdu_ready for one without data) until the next feed.
  const Pdu& pdu() const { return pdu_; }
  // A received TermReq's data: (part of) the header of the PDU the peer found in error.
  std::span<const uint8_t> term_data() const { return {term_, term_have_}; }
  // The violation, in failed (or data_digest_error) state.
  const PduError& error() const { return error_; }
  // The bytes of the current PDU's header received so far: what a TermReq sends back.
  std::span<const uint8_t> raw_header() const;

  // In need_buffer: where the PDU's data goes; `dest` must be exactly pdu().data_length bytes
  // and stay valid until the PDU is complete. False (and no change) if its size is wrong.
  bool set_data_buffer(std::span<uint8_t> dest);
  // In need_buffer: consume the data without keeping it (its digest is still checked).
  void discard_data();

  // While data is due for a buffer: the part not yet filled (empty otherwise: feed() instead).
  std::span<uint8_t> data_window() const;
  // `n` bytes were written into data_window() (at most its size).
  void data_received(size_t n);

  // How many bytes finish the current stage (header, padding, data, digest); 0 unless reading.
  size_t bytes_wanted() const;

 private:
  enum class Phase : uint8_t { common, header, wait_buffer, padding, data, data_digest, term_data, done, failed };

  void start_next_pdu();
  size_t header_end() const;
  void header_complete();
  void data_complete();
  void fail(const PduError& e);
  void fail(Violation v) { fail(make_error(v)); }

  Role role_;
  RxParams params_;
  Phase phase_ = Phase::common;
  bool connected_ = false;   // the IC PDU is in
  bool terminated_ = false;  // a TermReq is in: nothing may follow
  bool digest_ok_ = true;
  PduError error_;
  Pdu pdu_;

  uint8_t header_[kMaxHeaderSize + kDigestSize];
  size_t header_have_ = 0;
  uint8_t term_[kMaxTermData];
  size_t term_have_ = 0;

  uint8_t* dest_ = nullptr;  // null while discarding
  size_t data_have_ = 0;
  size_t pad_left_ = 0;
  uint32_t crc_ = 0;
  uint8_t digest_[kDigestSize];
  size_t digest_have_ = 0;
};

}  // namespace sluice::nvme::tcp
