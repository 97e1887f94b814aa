// Fuzz target: the iSCSI PDU codec (src/target/iscsi/pdu.h, pdu_reader.h) as either end of a
// connection meets its peer's bytes.
//
// Input: byte 0 picks the role (bit 0: target, else initiator), the digests the reader
// expects (bit 1 header, bit 2 data), whether data is received straight into data_window()
// (bit 3), MaxRecvDataSegmentLength (bit 4: 512, else 8192) and the AHS bound (bit 5: 1020,
// else 264); byte 1 picks how the stream arrives (1-64 bytes at a time). The rest is the
// peer's stream. Besides "never crash, leak or hang" it checks:
//   - feed() consumes only what it is given, and nothing once the reader has failed;
//   - a delivered PDU has an opcode the role receives, lengths within the bounds, its data
//     (internal buffer) of DataSegmentLength bytes;
//   - the builder re-encodes every delivered header into bytes that decode to the same fields;
//   - a rejected PDU names a non-fatal violation and keeps its 48-byte BHS for the Reject; a
//     failure names a fatal one.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "target/iscsi/pdu.h"
#include "target/iscsi/pdu_reader.h"

namespace sluice::fuzz {
namespace {

using namespace sluice::iscsi;
using State = PduReader::State;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "iscsi_pdu_fuzz: BROKEN PROMISE: %s\n", what);
  std::abort();
}

void check_reencode(const Pdu& p, Role role, const RxParams& rx) {
  uint8_t b[kMaxHeaderSize];
  const TxParams tx{rx.header_digest, rx.data_digest};
  const size_t n = build_header(b, tx, p.header, p.data_length, &p.ahs);
  if (n < kBhsSize || n > kMaxHeaderSize) broken("built header of a bad size");
  RxParams loose = rx;
  loose.max_ahs_length = kMaxAhsSize;
  Pdu again;
  if (!decode_bhs(b, role, loose, again).ok()) broken("a re-encoded header fails to decode");
  if (again.ahs_length > 0 && !decode_ahs(b + kBhsSize, again).ok()) broken("a re-encoded AHS fails to decode");
  if (again.opcode != p.opcode || again.data_length != p.data_length) broken("re-encoding changed opcode or length");
  if (!(again.header == p.header)) broken("re-encoding changed a header field");
  if (!(again.ahs == p.ahs)) broken("re-encoding changed the AHS");
  if (rx.header_digest && get_digest(b + n - kDigestSize) != header_digest({b, n - kDigestSize}))
    broken("built header digest is wrong");
}

void check_delivered(const PduReader& r, Role role, const RxParams& rx, bool internal) {
  const Pdu& p = r.pdu();
  if (!is_known_opcode(uint8_t(p.opcode)) || opcode_sender(uint8_t(p.opcode)) == role)
    broken("delivered a PDU this role never receives");
  if (header_opcode(p.header) != p.opcode) broken("header variant disagrees with the opcode");
  if (p.data_length > rx.max_recv_data_segment_length) broken("delivered data over MaxRecvDataSegmentLength");
  if (p.ahs_length > rx.max_ahs_length) broken("delivered an AHS over the bound");
  if (p.ahs_length > 0 && p.opcode != Opcode::scsi_command) broken("AHS on a PDU other than SCSI Command");
  if (internal && r.state() == State::pdu_ready && r.data().size() != p.data_length) broken("internal data size");
  check_reencode(p, role, rx);
}

void run(const uint8_t* data, size_t size) {
  if (size < 2) return;
  const uint8_t mode = data[0];
  const size_t step = 1 + data[1] % 64;
  const Role role = (mode & 1) ? Role::target : Role::initiator;
  RxParams rx;
  rx.header_digest = mode & 2;
  rx.data_digest = mode & 4;
  const bool into_window = mode & 8;
  rx.max_recv_data_segment_length = (mode & 0x10) ? 512 : 8192;
  rx.max_ahs_length = (mode & 0x20) ? uint32_t(kMaxAhsSize) : 264;
  const std::span<const uint8_t> stream(data + 2, size - 2);

  PduReader reader(role, rx, 4096);
  std::vector<uint8_t> buffer;
  size_t at = 0, pdus = 0;
  bool internal = false;
  while (at < stream.size()) {
    const std::span<uint8_t> window = reader.data_window();
    if (into_window && !window.empty()) {
      const size_t n = std::min({window.size(), stream.size() - at, step});
      std::memcpy(window.data(), stream.data() + at, n);
      reader.data_received(n);
      at += n;
    } else {
      const size_t n = std::min(stream.size() - at, step);
      const size_t used = reader.feed(stream.subspan(at, n));
      if (used > n) broken("feed consumed more than it was given");
      at += used;
    }
    switch (reader.state()) {
      case State::reading: break;
      case State::need_buffer: {
        const uint32_t len = reader.pdu().data_length;
        if (len == 0 || len > rx.max_recv_data_segment_length) broken("asked for a buffer of a bad size");
        internal = false;
        switch (++pdus % 3) {
          case 0: reader.discard_data(); break;
          case 1:
            internal = reader.use_internal_buffer();
            if (internal != (len <= 4096)) broken("internal buffer refused within its capacity");
            if (!internal) reader.discard_data();
            break;
          default:
            buffer.assign(len, 0);
            if (!reader.set_data_buffer(buffer)) broken("refused a buffer of the data length");
        }
        if (reader.state() != State::reading) broken("no data due after a buffer was given");
        break;
      }
      case State::pdu_ready:
      case State::data_digest_error:
        if (reader.state() == State::data_digest_error && reader.error().what != Violation::data_digest)
          broken("data digest state without a data digest error");
        check_delivered(reader, role, rx, internal);
        internal = false;
        break;
      case State::rejected:
        if (reader.error().ok() || reader.error().fatal()) broken("rejected without a non-fatal violation");
        if (reader.bhs().size() != kBhsSize) broken("rejected PDU without its BHS");
        if (!reader.data().empty()) broken("a rejected PDU's data was kept");
        break;
      case State::failed: {
        if (reader.error().ok() || !reader.error().fatal()) broken("failed without a fatal violation");
        const uint8_t more[16] = {};
        if (reader.feed(more) != 0 || reader.state() != State::failed) broken("a failed reader took more bytes");
        return;
      }
    }
  }
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::fuzz::run(data, size);
  return 0;
}
