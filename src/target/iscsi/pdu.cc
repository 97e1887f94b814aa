// The iSCSI BHS codec (pdu.h): opcode checks, decoding, builders, AHS, digests. The field
// layouts themselves are in pdu_fields.h.
#include "target/iscsi/pdu.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string>

#include "base/coding.h"
#include "base/crc32c.h"
#include "target/iscsi/pdu_fields.h"

namespace sluice::iscsi {
namespace {

using namespace layout;

// The opcode of each Header alternative, in the variant's order.
constexpr Opcode kHeaderOpcodes[] = {
    Opcode::nop_out,       Opcode::scsi_command,  Opcode::task_mgmt_request,  Opcode::login_request,
    Opcode::text_request,  Opcode::data_out,      Opcode::logout_request,     Opcode::snack_request,
    Opcode::nop_in,        Opcode::scsi_response, Opcode::task_mgmt_response, Opcode::login_response,
    Opcode::text_response, Opcode::data_in,       Opcode::logout_response,    Opcode::r2t,
    Opcode::async_message, Opcode::reject};
static_assert(std::size(kHeaderOpcodes) == std::variant_size_v<Header>);

// Opcodes whose F bit is always 1 (RFC 7143 shows it as a fixed "1").
bool final_is_fixed(Opcode op) {
  switch (op) {
    case Opcode::scsi_command:
    case Opcode::login_request:
    case Opcode::text_request:
    case Opcode::data_out:
    case Opcode::login_response:
    case Opcode::text_response:
    case Opcode::data_in: return false;
    default: return true;
  }
}

// PDUs whose DataSegmentLength RFC 7143 fixes at 0.
bool never_has_data(Opcode op) {
  switch (op) {
    case Opcode::task_mgmt_request:
    case Opcode::logout_request:
    case Opcode::snack_request:
    case Opcode::task_mgmt_response:
    case Opcode::logout_response:
    case Opcode::r2t: return true;
    default: return false;
  }
}

template <typename T>
void decode_as(const uint8_t* bhs, Pdu& out) {
  T h;
  Fields<false> f(bhs);
  fields(f, h);
  out.header = h;
}

PduError error(Violation what, RejectReason reason, std::string message) { return {what, reason, std::move(message)}; }

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%02x", v);
  return b;
}

// Checks of fields whose values RFC 7143 forbids, where the header alone shows it.
PduError check_fields(const Pdu& p) {
  if (const auto* l = std::get_if<LoginRequest>(&p.header)) {
    if (l->transit && l->cont)
      return error(Violation::bad_field, RejectReason::protocol_error, "Login Request with both T and C set");
    if (l->csg == 2 || (l->transit && l->nsg == 2))
      return error(Violation::bad_field, RejectReason::protocol_error, "Login Request names the reserved stage 2");
  }
  if (const auto* t = std::get_if<TextRequest>(&p.header); t != nullptr && t->final && t->cont)
    return error(Violation::bad_field, RejectReason::protocol_error, "Text Request with both F and C set");
  if (p.ahs_length > 0 && p.opcode != Opcode::scsi_command)
    return error(Violation::bad_ahs, RejectReason::protocol_error,
                 std::string(opcode_name(uint8_t(p.opcode))) + " with an AHS (only SCSI Command has one)");
  if (p.data_length > 0 && never_has_data(p.opcode))
    return error(Violation::unexpected_data, RejectReason::protocol_error,
                 std::string(opcode_name(uint8_t(p.opcode))) + " with a data segment of " +
                     std::to_string(p.data_length) + " bytes");
  return {};
}

void put_be16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

size_t encode_ahs(uint8_t* out, const Ahs& ahs) {
  size_t n = 0;
  if (ahs.extended_cdb_length > 0) {
    const uint16_t len = std::min<uint16_t>(ahs.extended_cdb_length, kMaxExtendedCdb);
    put_be16(out, uint16_t(len + 1));  // AHSLength counts the reserved byte
    out[2] = kAhsExtendedCdb;
    out[3] = 0;
    std::memcpy(out + 4, ahs.extended_cdb, len);
    n = 4 + len;
    std::memset(out + n, 0, padding_length(n));
    n += padding_length(n);
  }
  if (ahs.bidi_read_length) {
    put_be16(out + n, 5);
    out[n + 2] = kAhsBidiReadLength;
    out[n + 3] = 0;
    for (int i = 0; i < 4; ++i) out[n + 4 + i] = uint8_t(*ahs.bidi_read_length >> (24 - 8 * i));
    n += 8;
  }
  return n;
}

}  // namespace

std::string_view opcode_name(uint8_t opcode) {
  switch (opcode) {
    case uint8_t(Opcode::nop_out): return "NOP-Out";
    case uint8_t(Opcode::scsi_command): return "SCSI Command";
    case uint8_t(Opcode::task_mgmt_request): return "Task Management Request";
    case uint8_t(Opcode::login_request): return "Login Request";
    case uint8_t(Opcode::text_request): return "Text Request";
    case uint8_t(Opcode::data_out): return "SCSI Data-Out";
    case uint8_t(Opcode::logout_request): return "Logout Request";
    case uint8_t(Opcode::snack_request): return "SNACK Request";
    case uint8_t(Opcode::nop_in): return "NOP-In";
    case uint8_t(Opcode::scsi_response): return "SCSI Response";
    case uint8_t(Opcode::task_mgmt_response): return "Task Management Response";
    case uint8_t(Opcode::login_response): return "Login Response";
    case uint8_t(Opcode::text_response): return "Text Response";
    case uint8_t(Opcode::data_in): return "SCSI Data-In";
    case uint8_t(Opcode::logout_response): return "Logout Response";
    case uint8_t(Opcode::r2t): return "R2T";
    case uint8_t(Opcode::async_message): return "Async Message";
    case uint8_t(Opcode::reject): return "Reject";
    default: return "unknown";
  }
}

bool is_known_opcode(uint8_t opcode) { return opcode_name(opcode) != "unknown"; }

Role opcode_sender(uint8_t opcode) { return (opcode & 0x20) ? Role::target : Role::initiator; }

Opcode header_opcode(const Header& h) { return kHeaderOpcodes[h.index()]; }

std::string_view violation_name(Violation v) {
  switch (v) {
    case Violation::none: return "none";
    case Violation::unknown_opcode: return "unknown opcode";
    case Violation::wrong_direction: return "opcode of the other direction";
    case Violation::ahs_too_long: return "AHS too long";
    case Violation::bad_ahs: return "bad AHS";
    case Violation::data_over_limit: return "data segment over MaxRecvDataSegmentLength";
    case Violation::unexpected_data: return "unexpected data segment";
    case Violation::bad_field: return "bad header field";
    case Violation::header_digest: return "header digest error";
    case Violation::data_digest: return "data digest error";
  }
  return "?";
}

uint64_t lun_from_index(uint16_t index) {
  if (index < 256) return uint64_t{index} << 48;
  return uint64_t{0x4000u | (index & 0x3fffu)} << 48;
}

std::optional<uint16_t> lun_to_index(uint64_t lun) {
  if ((lun & 0x0000ffffffffffffull) != 0) return std::nullopt;
  const uint16_t top = uint16_t(lun >> 48);
  switch (top >> 14) {
    case 0: return (top >> 8) == 0 ? std::optional<uint16_t>(top & 0xff) : std::nullopt;  // bus 0 only
    case 1: return uint16_t(top & 0x3fff);
    default: return std::nullopt;
  }
}

PduError decode_bhs(const uint8_t* bhs, Role receiver, const RxParams& rx, Pdu& out) {
  out = Pdu{};
  const uint8_t op = bhs[0] & 0x3f;
  out.opcode = Opcode(op);
  out.ahs_length = uint32_t{bhs[kOffAhsLen]} * 4;
  out.data_length = uint32_t{bhs[kOffDataLen]} << 16 | uint32_t{bhs[kOffDataLen + 1]} << 8 | bhs[kOffDataLen + 2];
  // The lengths first: until they are known sane the PDU cannot even be skipped.
  if (out.ahs_length > rx.max_ahs_length)
    return error(
        Violation::ahs_too_long, RejectReason::protocol_error,
        "AHS of " + std::to_string(out.ahs_length) + " bytes, over the limit of " + std::to_string(rx.max_ahs_length));
  if (out.data_length > rx.max_recv_data_segment_length)
    return error(Violation::data_over_limit, RejectReason::protocol_error,
                 "data segment of " + std::to_string(out.data_length) + " bytes, over MaxRecvDataSegmentLength " +
                     std::to_string(rx.max_recv_data_segment_length));
  if (!is_known_opcode(op))
    return error(Violation::unknown_opcode, RejectReason::command_not_supported, "unknown opcode " + hex(op));
  if (opcode_sender(op) == receiver)
    return error(Violation::wrong_direction, RejectReason::protocol_error,
                 "opcode " + hex(op) + " (" + std::string(opcode_name(op)) + ") is sent by " +
                     (receiver == Role::target ? "targets" : "initiators") + ", not received by them");
  switch (out.opcode) {
    case Opcode::nop_out: decode_as<NopOut>(bhs, out); break;
    case Opcode::scsi_command: decode_as<ScsiCommand>(bhs, out); break;
    case Opcode::task_mgmt_request: decode_as<TaskMgmtRequest>(bhs, out); break;
    case Opcode::login_request: decode_as<LoginRequest>(bhs, out); break;
    case Opcode::text_request: decode_as<TextRequest>(bhs, out); break;
    case Opcode::data_out: decode_as<DataOut>(bhs, out); break;
    case Opcode::logout_request: decode_as<LogoutRequest>(bhs, out); break;
    case Opcode::snack_request: decode_as<SnackRequest>(bhs, out); break;
    case Opcode::nop_in: decode_as<NopIn>(bhs, out); break;
    case Opcode::scsi_response: decode_as<ScsiResponse>(bhs, out); break;
    case Opcode::task_mgmt_response: decode_as<TaskMgmtResponse>(bhs, out); break;
    case Opcode::login_response: decode_as<LoginResponse>(bhs, out); break;
    case Opcode::text_response: decode_as<TextResponse>(bhs, out); break;
    case Opcode::data_in: decode_as<DataIn>(bhs, out); break;
    case Opcode::logout_response: decode_as<LogoutResponse>(bhs, out); break;
    case Opcode::r2t: decode_as<R2t>(bhs, out); break;
    case Opcode::async_message: decode_as<AsyncMessage>(bhs, out); break;
    case Opcode::reject: decode_as<Reject>(bhs, out); break;
  }
  return check_fields(out);
}

PduError decode_ahs(const uint8_t* ahs, Pdu& pdu) {
  pdu.ahs = Ahs{};
  size_t at = 0;
  bool have_cdb = false;
  while (at < pdu.ahs_length) {
    if (pdu.ahs_length - at < 4)
      return error(Violation::bad_ahs, RejectReason::protocol_error, "AHS truncated at byte " + std::to_string(at));
    const size_t len = size_t{ahs[at]} << 8 | ahs[at + 1];
    const uint8_t type = ahs[at + 2];
    const size_t total = (3 + len + 3) / 4 * 4;
    if (len == 0 || total > pdu.ahs_length - at)
      return error(Violation::bad_ahs, RejectReason::protocol_error,
                   "AHS of type " + std::to_string(type) + " with AHSLength " + std::to_string(len) +
                       " does not fit TotalAHSLength");
    if (type == kAhsExtendedCdb) {
      if (have_cdb || len - 1 > kMaxExtendedCdb)
        return error(Violation::bad_ahs, RejectReason::protocol_error, "bad or repeated Extended CDB AHS");
      have_cdb = true;
      pdu.ahs.extended_cdb_length = uint16_t(len - 1);
      std::memcpy(pdu.ahs.extended_cdb, ahs + at + 4, len - 1);
    } else if (type == kAhsBidiReadLength) {
      if (len != 5 || pdu.ahs.bidi_read_length)
        return error(Violation::bad_ahs, RejectReason::protocol_error, "bad or repeated Bidirectional Read AHS");
      const uint8_t* v = ahs + at + 4;
      pdu.ahs.bidi_read_length = uint32_t{v[0]} << 24 | uint32_t{v[1]} << 16 | uint32_t{v[2]} << 8 | v[3];
    } else {
      return error(Violation::bad_ahs, RejectReason::protocol_error, "unknown AHS type " + std::to_string(type));
    }
    at += total;
  }
  return {};
}

size_t build_header(uint8_t* out, const TxParams& tx, const Header& h, uint32_t data_length, const Ahs* ahs) {
  std::memset(out, 0, kBhsSize);
  const Opcode op = header_opcode(h);
  std::visit(
      [&](const auto& x) {
        auto copy = x;
        Fields<true> f(out);
        fields(f, copy);
      },
      h);
  out[0] |= uint8_t(op);
  if (op == Opcode::login_request) out[0] |= kImmediate;
  if (final_is_fixed(op)) out[kOffFlags] |= kFlagFinal;
  data_length = std::min(data_length, kMaxDataSegmentLength);
  out[kOffDataLen] = uint8_t(data_length >> 16);
  out[kOffDataLen + 1] = uint8_t(data_length >> 8);
  out[kOffDataLen + 2] = uint8_t(data_length);
  size_t n = kBhsSize;
  if (ahs != nullptr && op == Opcode::scsi_command) n += encode_ahs(out + n, *ahs);
  out[kOffAhsLen] = uint8_t((n - kBhsSize) / 4);
  if (tx.header_digest) {
    put_digest(out + n, header_digest({out, n}));
    n += kDigestSize;
  }
  return n;
}

void append_pdu(std::vector<uint8_t>& out, const TxParams& tx, const Header& h, std::span<const uint8_t> data,
                const Ahs* ahs) {
  uint8_t header[kMaxHeaderSize];
  const size_t len = std::min<size_t>(data.size(), kMaxDataSegmentLength);
  data = data.first(len);
  const size_t n = build_header(header, tx, h, uint32_t(len), ahs);
  out.insert(out.end(), header, header + n);
  out.insert(out.end(), data.begin(), data.end());
  out.insert(out.end(), padding_length(len), 0);
  if (tx.data_digest && len > 0) {
    uint8_t d[kDigestSize];
    put_digest(d, data_digest(data));
    out.insert(out.end(), d, d + kDigestSize);
  }
}

uint32_t header_digest(std::span<const uint8_t> header) { return crc32c(header.data(), header.size()); }

uint32_t extend_data_digest(uint32_t crc, std::span<const uint8_t> data) {
  return crc32c(data.data(), data.size(), crc);
}

uint32_t finish_data_digest(uint32_t crc, size_t data_length) {
  static constexpr uint8_t kZeroes[4] = {};
  return crc32c(kZeroes, padding_length(data_length), crc);
}

uint32_t data_digest(std::span<const uint8_t> data) {
  return finish_data_digest(extend_data_digest(0, data), data.size());
}

void put_digest(uint8_t* out, uint32_t digest) { put_le<uint32_t>(reinterpret_cast<char*>(out), digest); }

uint32_t get_digest(const uint8_t* in) { return get_le<uint32_t>(reinterpret_cast<const char*>(in)); }

}  // namespace sluice::iscsi
