// Fuzz target: the NVMe/TCP PDU codec (src/nvme/tcp_pdu.h, tcp_pdu_reader.h) as either end of
// a connection meets its peer's bytes.
//
// Input: byte 0 picks the role (bit 0: controller, else host), the digests the reader expects
// (bit 1 header, bit 2 data), its PDA (bits 3-4: 0, 1, 7 or 31), whether data is received
// straight into data_window() (bit 5) and whether a valid IC PDU is put in front (bit 6);
// byte 1 picks how the stream arrives (1-64 bytes at a time). The rest is the peer's stream.
// Besides "never crash, leak or hang" it checks:
//   - feed() consumes only what it is given, and nothing once the reader has failed;
//   - a PDU the reader delivers is one the role receives, with the type's HLEN, a PLEN within
//     the bound, DATAL equal to the data it carried, H2CData within MAXH2CDATA, in-capsule
//     data within its bound, SUCCESS only with LAST_PDU;
//   - the builders re-encode every delivered header into bytes that decode to the same fields;
//   - a failure is fatal, names a violation, and its header copy makes a TermReq of <= 152 bytes.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "nvme/tcp_pdu.h"
#include "nvme/tcp_pdu_reader.h"

namespace sluice::fuzz {
namespace {

using namespace sluice::nvme::tcp;
using State = PduReader::State;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "nvme_tcp_pdu_fuzz: BROKEN PROMISE: %s\n", what);
  std::abort();
}

constexpr uint8_t kPdas[] = {0, 1, 7, 31};

bool receives(Role role, PduType t) {
  const bool to_controller =
      t == PduType::ic_req || t == PduType::h2c_term_req || t == PduType::capsule_cmd || t == PduType::h2c_data;
  return to_controller == (role == Role::controller);
}

// Re-encodes `p` with the builders and decodes the result: the fields must survive.
void check_reencode(const Pdu& p, Role role, const RxParams& rx) {
  const Role sender = role == Role::controller ? Role::host : Role::controller;
  const TxParams tx{rx.header_digest, rx.data_digest, rx.pda};
  uint8_t b[kMaxBuiltSize];
  switch (p.type) {
    case PduType::ic_req: build_ic_req(b, p.ic_req); break;
    case PduType::ic_resp: build_ic_resp(b, p.ic_resp); break;
    case PduType::capsule_cmd: build_capsule_cmd(b, tx, p.sqe, p.data_length); break;
    case PduType::capsule_resp: build_capsule_resp(b, tx, p.cqe); break;
    case PduType::h2c_data:
    case PduType::c2h_data: build_data(b, sender, tx, p.data); break;
    case PduType::r2t: build_r2t(b, tx, p.r2t); break;
    default: return;  // TermReqs: their data is checked where they arrive
  }
  if (PduError e = check_common(b, role, p.type != PduType::ic_req && p.type != PduType::ic_resp, rx); !e.ok())
    broken("a re-encoded header fails check_common");
  Pdu again;
  if (PduError e = decode_header(b, rx, again); !e.ok()) broken("a re-encoded header fails to decode");
  if (again.type != p.type || again.data_length != p.data_length) broken("re-encoding changed type or data length");
  if (std::memcmp(&again.sqe, &p.sqe, sizeof p.sqe) != 0 || std::memcmp(&again.cqe, &p.cqe, sizeof p.cqe) != 0)
    broken("re-encoding changed the SQE or CQE");
  if (again.data.cccid != p.data.cccid || again.data.datao != p.data.datao || again.data.datal != p.data.datal ||
      again.data.last != p.data.last || again.data.success != p.data.success ||
      (p.type == PduType::h2c_data && again.data.ttag != p.data.ttag))
    broken("re-encoding changed a data header");
  if (again.r2t.cccid != p.r2t.cccid || again.r2t.ttag != p.r2t.ttag || again.r2t.r2to != p.r2t.r2to ||
      again.r2t.r2tl != p.r2t.r2tl)
    broken("re-encoding changed an R2T");
  if (again.ic_req.hpda != p.ic_req.hpda || again.ic_req.digest != p.ic_req.digest ||
      again.ic_req.maxr2t != p.ic_req.maxr2t || again.ic_resp.cpda != p.ic_resp.cpda ||
      again.ic_resp.maxh2cdata != p.ic_resp.maxh2cdata)
    broken("re-encoding changed an IC PDU");
}

void check_delivered(const PduReader& reader, Role role, const RxParams& rx) {
  const Pdu& p = reader.pdu();
  if (!receives(role, p.type)) broken("delivered a PDU this role never receives");
  if (p.hlen != header_length(uint8_t(p.type))) broken("delivered a PDU with the wrong HLEN");
  if (p.plen > rx.max_plen) broken("delivered a PDU over the PLEN bound");
  if (p.data_length > p.plen) broken("data longer than the PDU");
  switch (p.type) {
    case PduType::capsule_cmd:
      if (p.data_length > rx.max_capsule_data) broken("in-capsule data over the bound");
      break;
    case PduType::h2c_data:
      if (p.data.datal > rx.maxh2cdata) broken("H2CData over MAXH2CDATA");
      [[fallthrough]];
    case PduType::c2h_data:
      if (p.data.datal != p.data_length || p.data.datal == 0) broken("DATAL disagrees with the data carried");
      if (p.data.success && !p.data.last) broken("SUCCESS without LAST_PDU");
      break;
    case PduType::h2c_term_req:
    case PduType::c2h_term_req:
      if (reader.term_data().size() != p.data_length || p.data_length > kMaxTermData) broken("TermReq data size");
      break;
    case PduType::ic_resp:
      if (p.ic_resp.maxh2cdata < kMinMaxH2cData || p.ic_resp.cpda > kMaxPda) broken("accepted a bad ICResp");
      break;
    default: break;
  }
  check_reencode(p, role, rx);
}

void check_failure(PduReader& reader, Role role) {
  const PduError& e = reader.error();
  if (e.ok() || !e.fatal()) broken("failed without a fatal violation");
  if (reader.raw_header().size() > kMaxHeaderSize) broken("raw header longer than any header");
  uint8_t term[kMaxBuiltSize];
  if (build_term_req(term, role, e.fes, e.fei, reader.raw_header()) > kMaxTermPdu) broken("TermReq over 152 bytes");
  const uint8_t more[16] = {};
  if (reader.feed(more) != 0 || reader.state() != State::failed) broken("a failed reader took more bytes");
}

void run(const uint8_t* data, size_t size) {
  if (size < 2) return;
  const uint8_t mode = data[0];
  const size_t step = 1 + data[1] % 64;
  const Role role = (mode & 1) ? Role::controller : Role::host;
  RxParams rx;
  rx.header_digest = mode & 2;
  rx.data_digest = mode & 4;
  rx.pda = kPdas[(mode >> 3) & 3];
  rx.maxh2cdata = 8192;
  rx.max_capsule_data = 4096;
  rx.max_plen = 64 * 1024;  // bounds what a PDU can make the harness allocate
  const bool into_window = mode & 0x20;

  std::vector<uint8_t> stream;
  if (mode & 0x40) {
    uint8_t ic[kMaxBuiltSize];
    const size_t n = role == Role::controller ? build_ic_req(ic, {}) : build_ic_resp(ic, {});
    stream.assign(ic, ic + n);
  }
  stream.insert(stream.end(), data + 2, data + size);

  PduReader reader(role, rx);
  std::vector<uint8_t> buffer;
  size_t at = 0, pdus = 0;
  while (at < stream.size()) {
    const std::span<uint8_t> window = reader.data_window();
    if (into_window && !window.empty()) {
      const size_t n = std::min({window.size(), stream.size() - at, step});
      std::memcpy(window.data(), stream.data() + at, n);
      reader.data_received(n);
      at += n;
    } else {
      const size_t n = std::min(stream.size() - at, step);
      const size_t used = reader.feed(std::span<const uint8_t>(stream.data() + at, n));
      if (used > n) broken("feed consumed more than it was given");
      at += used;
    }
    switch (reader.state()) {
      case State::reading: break;
      case State::need_buffer:
        if (reader.pdu().data_length > rx.max_plen) broken("asked for a buffer over the PLEN bound");
        if (++pdus % 3 == 0) {
          reader.discard_data();
        } else {
          buffer.assign(reader.pdu().data_length, 0);
          if (!reader.set_data_buffer(buffer)) broken("refused a buffer of the data length");
        }
        if (reader.state() != State::reading) broken("no data due after a buffer was given");
        break;
      case State::pdu_ready:
      case State::data_digest_error:
        if (reader.state() == State::data_digest_error && reader.error().what != Violation::data_digest)
          broken("data digest state without a data digest error");
        check_delivered(reader, role, rx);
        reader.set_params(rx);
        break;
      case State::failed: check_failure(reader, role); return;
    }
  }
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::fuzz::run(data, size);
  return 0;
}
