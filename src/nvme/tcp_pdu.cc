// The NVMe/TCP PDU codec: builders and header checks (tcp_pdu.h).
#include "nvme/tcp_pdu.h"

#include <algorithm>
#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"

namespace sluice::nvme::tcp {
namespace {

// Field offsets after the common header, from the transport spec's PDU layouts.
constexpr size_t kOffIcPfv = 8, kOffIcPda = 10, kOffIcDigest = 11, kOffIcMax = 12;
constexpr size_t kOffTermFes = 8, kOffTermFei = 10;
constexpr size_t kOffSqe = 8, kOffCqe = 8;
constexpr size_t kOffCccid = 8, kOffTtag = 10, kOffOffset = 12, kOffLength = 16;

template <typename T>
void put(uint8_t* p, size_t off, T v) {
  put_le<T>(reinterpret_cast<char*>(p + off), v);
}
template <typename T>
T get(const uint8_t* p, size_t off) {
  return get_le<T>(reinterpret_cast<const char*>(p + off));
}

bool is_term(uint8_t type) { return type == uint8_t(PduType::h2c_term_req) || type == uint8_t(PduType::c2h_term_req); }
bool is_ic(uint8_t type) { return type == uint8_t(PduType::ic_req) || type == uint8_t(PduType::ic_resp); }
bool is_data(uint8_t type) { return type == uint8_t(PduType::h2c_data) || type == uint8_t(PduType::c2h_data); }
// Types that may carry data after PDO: the capsule (in-capsule data) and the data PDUs.
bool may_carry_data(uint8_t type) { return type == uint8_t(PduType::capsule_cmd) || is_data(type); }

bool receives(Role role, uint8_t type) {
  switch (PduType(type)) {
    case PduType::ic_req:
    case PduType::h2c_term_req:
    case PduType::capsule_cmd:
    case PduType::h2c_data: return role == Role::controller;
    case PduType::ic_resp:
    case PduType::c2h_term_req:
    case PduType::capsule_resp:
    case PduType::c2h_data:
    case PduType::r2t: return role == Role::host;
  }
  return false;
}

uint32_t alignment(uint8_t pda) { return (uint32_t{pda} + 1) * 4; }

// Where the data of a PDU with header-end `hend` starts: the next multiple of the alignment.
uint8_t data_offset(size_t hend, uint8_t pda) {
  const uint32_t a = alignment(std::min(pda, kMaxPda));
  return static_cast<uint8_t>((hend + a - 1) / a * a);
}

// The common header; flags beyond the digests are the caller's.
size_t put_common(uint8_t* out, PduType type, uint8_t flags, uint8_t hlen, uint8_t pdo, uint32_t plen) {
  out[0] = uint8_t(type);
  out[1] = flags;
  out[2] = hlen;
  out[3] = pdo;
  put<uint32_t>(out, kOffPlen, plen);
  return kCommonHeaderSize;
}

// Lays out a PDU of `hlen` header bytes and `data_len` data bytes under `tx`: writes the
// common header, zeroes the rest of the header and the padding, returns where data starts
// (the length of what the caller sends before its data). The header digest is added by
// seal_header() once the type's fields are in.
size_t start_pdu(uint8_t* out, PduType type, uint8_t extra_flags, uint8_t hlen, const TxParams& tx, uint32_t data_len) {
  const size_t hend = hlen + (tx.header_digest ? kDigestSize : 0);
  const bool ddgst = tx.data_digest && data_len > 0;
  const uint8_t pdo = data_len > 0 ? data_offset(hend, tx.pda) : 0;
  const size_t data_start = data_len > 0 ? pdo : hend;
  const uint32_t plen = static_cast<uint32_t>(data_start + data_len + (ddgst ? kDigestSize : 0));
  uint8_t flags = extra_flags;
  if (tx.header_digest) flags |= kFlagHdgst;
  if (ddgst) flags |= kFlagDdgst;
  std::memset(out, 0, data_start);
  put_common(out, type, flags, hlen, pdo, plen);
  return data_start;
}

void seal_header(uint8_t* out, uint8_t hlen, const TxParams& tx) {
  if (tx.header_digest) put_digest(out + hlen, crc32c(out, hlen));
}

}  // namespace

std::string_view pdu_type_name(uint8_t type) {
  switch (type) {
    case uint8_t(PduType::ic_req): return "ICReq";
    case uint8_t(PduType::ic_resp): return "ICResp";
    case uint8_t(PduType::h2c_term_req): return "H2CTermReq";
    case uint8_t(PduType::c2h_term_req): return "C2HTermReq";
    case uint8_t(PduType::capsule_cmd): return "CapsuleCmd";
    case uint8_t(PduType::capsule_resp): return "CapsuleResp";
    case uint8_t(PduType::h2c_data): return "H2CData";
    case uint8_t(PduType::c2h_data): return "C2HData";
    case uint8_t(PduType::r2t): return "R2T";
    default: return "unknown";
  }
}

uint8_t header_length(uint8_t type) {
  switch (type) {
    case uint8_t(PduType::ic_req):
    case uint8_t(PduType::ic_resp): return kIcHeaderSize;
    case uint8_t(PduType::h2c_term_req):
    case uint8_t(PduType::c2h_term_req): return kTermHeaderSize;
    case uint8_t(PduType::capsule_cmd): return kCmdHeaderSize;
    case uint8_t(PduType::capsule_resp): return kRespHeaderSize;
    case uint8_t(PduType::h2c_data):
    case uint8_t(PduType::c2h_data): return kDataHeaderSize;
    case uint8_t(PduType::r2t): return kR2tHeaderSize;
    default: return 0;
  }
}

// ---- Builders ---------------------------------------------------------------------------------

size_t build_ic_req(uint8_t* out, const IcReq& req) {
  std::memset(out, 0, kIcHeaderSize);
  put_common(out, PduType::ic_req, 0, kIcHeaderSize, 0, kIcHeaderSize);
  put<uint16_t>(out, kOffIcPfv, req.pfv);
  out[kOffIcPda] = req.hpda;
  out[kOffIcDigest] = req.digest;
  put<uint32_t>(out, kOffIcMax, req.maxr2t);
  return kIcHeaderSize;
}

size_t build_ic_resp(uint8_t* out, const IcResp& resp) {
  std::memset(out, 0, kIcHeaderSize);
  put_common(out, PduType::ic_resp, 0, kIcHeaderSize, 0, kIcHeaderSize);
  put<uint16_t>(out, kOffIcPfv, resp.pfv);
  out[kOffIcPda] = resp.cpda;
  out[kOffIcDigest] = resp.digest;
  put<uint32_t>(out, kOffIcMax, resp.maxh2cdata);
  return kIcHeaderSize;
}

size_t build_term_req(uint8_t* out, Role sender, Fes fes, uint32_t fei, std::span<const uint8_t> offending) {
  const size_t copy = std::min(offending.size(), kMaxTermData);
  const PduType type = sender == Role::host ? PduType::h2c_term_req : PduType::c2h_term_req;
  std::memset(out, 0, kTermHeaderSize);
  put_common(out, type, 0, kTermHeaderSize, 0, static_cast<uint32_t>(kTermHeaderSize + copy));
  put<uint16_t>(out, kOffTermFes, uint16_t(fes));
  // FEI means something only for these two; elsewhere it is reserved.
  if (fes == Fes::invalid_header_field || fes == Fes::unsupported_parameter) put<uint32_t>(out, kOffTermFei, fei);
  if (copy > 0) std::memcpy(out + kTermHeaderSize, offending.data(), copy);
  return kTermHeaderSize + copy;
}

size_t build_capsule_cmd(uint8_t* out, const TxParams& tx, const spec::Sqe& sqe, uint32_t data_len) {
  const size_t n = start_pdu(out, PduType::capsule_cmd, 0, kCmdHeaderSize, tx, data_len);
  std::memcpy(out + kOffSqe, &sqe, sizeof sqe);
  seal_header(out, kCmdHeaderSize, tx);
  return n;
}

size_t build_capsule_resp(uint8_t* out, const TxParams& tx, const spec::Cqe& cqe) {
  const size_t n = start_pdu(out, PduType::capsule_resp, 0, kRespHeaderSize, tx, 0);
  std::memcpy(out + kOffCqe, &cqe, sizeof cqe);
  seal_header(out, kRespHeaderSize, tx);
  return n;
}

size_t build_data(uint8_t* out, Role sender, const TxParams& tx, const DataHeader& h) {
  const bool c2h = sender == Role::controller;
  uint8_t flags = h.last ? kFlagLastPdu : 0;
  if (c2h && h.success) flags |= kFlagSuccess;
  const size_t n = start_pdu(out, c2h ? PduType::c2h_data : PduType::h2c_data, flags, kDataHeaderSize, tx, h.datal);
  put<uint16_t>(out, kOffCccid, h.cccid);
  put<uint16_t>(out, kOffTtag, c2h ? 0 : h.ttag);
  put<uint32_t>(out, kOffOffset, h.datao);
  put<uint32_t>(out, kOffLength, h.datal);
  seal_header(out, kDataHeaderSize, tx);
  return n;
}

size_t build_r2t(uint8_t* out, const TxParams& tx, const R2t& r) {
  const size_t n = start_pdu(out, PduType::r2t, 0, kR2tHeaderSize, tx, 0);
  put<uint16_t>(out, kOffCccid, r.cccid);
  put<uint16_t>(out, kOffTtag, r.ttag);
  put<uint32_t>(out, kOffOffset, r.r2to);
  put<uint32_t>(out, kOffLength, r.r2tl);
  seal_header(out, kR2tHeaderSize, tx);
  return n;
}

uint32_t data_digest(std::span<const uint8_t> data, uint32_t previous) {
  return crc32c(data.data(), data.size(), previous);
}

void put_digest(uint8_t* out, uint32_t digest) { put<uint32_t>(out, 0, digest); }
uint32_t get_digest(const uint8_t* in) { return get<uint32_t>(in, 0); }

// ---- Receive-side checks ------------------------------------------------------------------------

std::string_view violation_name(Violation v) {
  switch (v) {
    case Violation::none: return "none";
    case Violation::unknown_type: return "unknown PDU type";
    case Violation::wrong_direction: return "PDU type not sent in this direction";
    case Violation::before_connection: return "PDU before the ICReq/ICResp exchange";
    case Violation::repeated_ic: return "second ICReq/ICResp";
    case Violation::after_term_req: return "bytes after a TermReq";
    case Violation::bad_hlen: return "HLEN does not match the PDU type";
    case Violation::bad_flags: return "flags not allowed on this PDU";
    case Violation::digest_not_negotiated: return "digest flag set but the digest was not negotiated";
    case Violation::digest_missing: return "digest flag clear but the digest was negotiated";
    case Violation::bad_pdo: return "PDO below the header, misaligned or past PLEN";
    case Violation::bad_plen: return "PLEN inconsistent with the header";
    case Violation::plen_over_limit: return "PLEN over the receiver's limit";
    case Violation::data_over_maxh2cdata: return "H2CData DATAL over MAXH2CDATA";
    case Violation::capsule_data_over_limit: return "in-capsule data over the limit";
    case Violation::empty_data: return "data PDU or R2T of length 0";
    case Violation::header_digest: return "header digest mismatch";
    case Violation::data_digest: return "data digest mismatch";
    case Violation::bad_pfv: return "unsupported PDU format version";
    case Violation::bad_pda: return "HPDA/CPDA above 31";
    case Violation::bad_maxh2cdata: return "MAXH2CDATA below 4096 or not a multiple of 4";
    case Violation::term_data_too_long: return "TermReq longer than 152 bytes";
    case Violation::data_out_of_range: return "data offset or length out of range";
    case Violation::r2t_limit_exceeded: return "R2T limit exceeded";
  }
  return "unknown violation";
}

PduError make_error(Violation what) {
  switch (what) {
    case Violation::none: return {};
    case Violation::unknown_type:
    case Violation::wrong_direction: return {what, Fes::invalid_header_field, kOffType};
    case Violation::before_connection:
    case Violation::repeated_ic: return {what, Fes::pdu_sequence, 0};
    case Violation::after_term_req: return {what, Fes::none, 0};  // a TermReq is never answered
    case Violation::bad_hlen: return {what, Fes::invalid_header_field, kOffHlen};
    case Violation::bad_flags:
    case Violation::digest_not_negotiated:
    case Violation::digest_missing: return {what, Fes::invalid_header_field, kOffFlags};
    case Violation::bad_pdo: return {what, Fes::invalid_header_field, kOffPdo};
    case Violation::bad_plen:
    case Violation::plen_over_limit:
    case Violation::capsule_data_over_limit:
    case Violation::term_data_too_long: return {what, Fes::invalid_header_field, kOffPlen};
    case Violation::data_over_maxh2cdata: return {what, Fes::r2t_limit_exceeded, 0};
    case Violation::empty_data: return {what, Fes::invalid_header_field, kOffLength};
    case Violation::header_digest: return {what, Fes::header_digest, 0};
    case Violation::data_digest: return {what, Fes::none, 0};
    case Violation::bad_pfv: return {what, Fes::unsupported_parameter, kOffIcPfv};
    case Violation::bad_pda: return {what, Fes::invalid_header_field, kOffIcPda};
    case Violation::bad_maxh2cdata: return {what, Fes::invalid_header_field, kOffIcMax};
    case Violation::data_out_of_range: return {what, Fes::data_out_of_range, 0};
    case Violation::r2t_limit_exceeded: return {what, Fes::r2t_limit_exceeded, 0};
  }
  return {what, Fes::invalid_header_field, 0};
}

namespace {

// The digest flag `flag` against whether that digest was agreed.
Violation digest_flag(uint8_t flags, uint8_t flag, bool agreed) {
  if ((flags & flag) && !agreed) return Violation::digest_not_negotiated;
  if (!(flags & flag) && agreed) return Violation::digest_missing;
  return Violation::none;
}

// PLEN, PDO and the data digest flag against the type's layout; sets `data_length`.
Violation check_layout(const uint8_t* c, const RxParams& rx, uint32_t& data_length) {
  const uint8_t type = c[0], flags = c[1], hlen = c[2], pdo = c[3];
  const uint32_t plen = get<uint32_t>(c, kOffPlen);
  data_length = 0;
  if (plen > rx.max_plen) return Violation::plen_over_limit;
  if (is_ic(type)) return plen == kIcHeaderSize ? Violation::none : Violation::bad_plen;
  if (is_term(type)) {
    if (plen < kTermHeaderSize) return Violation::bad_plen;
    if (plen > kMaxTermPdu) return Violation::term_data_too_long;
    data_length = plen - kTermHeaderSize;
    return Violation::none;
  }
  const uint32_t hend = hlen + ((flags & kFlagHdgst) ? kDigestSize : 0);
  if (plen == hend) {
    // No data: allowed for a capsule only; no data digest without data.
    if (is_data(type)) return Violation::bad_plen;
    return (flags & kFlagDdgst) ? Violation::bad_flags : Violation::none;
  }
  if (!may_carry_data(type)) return (flags & kFlagDdgst) ? Violation::bad_flags : Violation::bad_plen;
  if (plen < hend) return Violation::bad_plen;
  if (pdo < hend || pdo % alignment(rx.pda) != 0) return Violation::bad_pdo;
  if (Violation v = digest_flag(flags, kFlagDdgst, rx.data_digest); v != Violation::none) return v;
  const uint32_t ddgst = (flags & kFlagDdgst) ? kDigestSize : 0;
  if (plen < uint64_t{pdo} + ddgst) return Violation::bad_pdo;
  data_length = plen - pdo - ddgst;
  if (data_length == 0) return Violation::bad_plen;  // only padding between header and digest
  if (type == uint8_t(PduType::capsule_cmd) && data_length > rx.max_capsule_data)
    return Violation::capsule_data_over_limit;
  return Violation::none;
}

}  // namespace

PduError check_common(const uint8_t* c, Role receiver, bool connected, const RxParams& rx) {
  const uint8_t type = c[0], flags = c[1], hlen = c[2];
  if (header_length(type) == 0) return make_error(Violation::unknown_type);
  if (!receives(receiver, type)) return make_error(Violation::wrong_direction);
  if (!connected && !is_ic(type) && !is_term(type)) return make_error(Violation::before_connection);
  if (connected && is_ic(type)) return make_error(Violation::repeated_ic);
  if (hlen != header_length(type)) return make_error(Violation::bad_hlen);
  if (is_ic(type) || is_term(type)) {
    // These never carry digests, whatever was agreed.
    if (flags & (kFlagHdgst | kFlagDdgst)) return make_error(Violation::digest_not_negotiated);
  } else if (Violation v = digest_flag(flags, kFlagHdgst, rx.header_digest); v != Violation::none) {
    return make_error(v);
  }
  uint32_t data_length = 0;
  return make_error(check_layout(c, rx, data_length));
}

PduError decode_header(const uint8_t* h, const RxParams& rx, Pdu& out) {
  out = Pdu{};
  out.type = PduType(h[0]);
  out.flags = h[1];
  out.hlen = h[2];
  out.pdo = h[3];
  out.plen = get<uint32_t>(h, kOffPlen);
  if (Violation v = check_layout(h, rx, out.data_length); v != Violation::none) return make_error(v);
  switch (out.type) {
    case PduType::ic_req:
      out.ic_req = {get<uint16_t>(h, kOffIcPfv), h[kOffIcPda], h[kOffIcDigest], get<uint32_t>(h, kOffIcMax)};
      if (out.ic_req.pfv != 0) return make_error(Violation::bad_pfv);
      if (out.ic_req.hpda > kMaxPda) return make_error(Violation::bad_pda);
      break;
    case PduType::ic_resp:
      out.ic_resp = {get<uint16_t>(h, kOffIcPfv), h[kOffIcPda], h[kOffIcDigest], get<uint32_t>(h, kOffIcMax)};
      if (out.ic_resp.pfv != 0) return make_error(Violation::bad_pfv);
      if (out.ic_resp.cpda > kMaxPda) return make_error(Violation::bad_pda);
      if (out.ic_resp.maxh2cdata < kMinMaxH2cData || out.ic_resp.maxh2cdata % 4 != 0)
        return make_error(Violation::bad_maxh2cdata);
      break;
    case PduType::h2c_term_req:
    case PduType::c2h_term_req: out.term = {get<uint16_t>(h, kOffTermFes), get<uint32_t>(h, kOffTermFei)}; break;
    case PduType::capsule_cmd: std::memcpy(&out.sqe, h + kOffSqe, sizeof out.sqe); break;
    case PduType::capsule_resp: std::memcpy(&out.cqe, h + kOffCqe, sizeof out.cqe); break;
    case PduType::h2c_data:
    case PduType::c2h_data: {
      DataHeader& d = out.data;
      d.cccid = get<uint16_t>(h, kOffCccid);
      d.ttag = get<uint16_t>(h, kOffTtag);
      d.datao = get<uint32_t>(h, kOffOffset);
      d.datal = get<uint32_t>(h, kOffLength);
      d.last = out.flags & kFlagLastPdu;
      // SUCCESS is reserved in H2CData; in C2HData it promises no CapsuleResp follows,
      // which only makes sense on the last PDU.
      d.success = out.type == PduType::c2h_data && (out.flags & kFlagSuccess);
      if (d.datal == 0) return make_error(Violation::empty_data);
      if (d.datal != out.data_length) return make_error(Violation::bad_plen);
      if (d.success && !d.last) return make_error(Violation::bad_flags);
      if (out.type == PduType::h2c_data && d.datal > rx.maxh2cdata) return make_error(Violation::data_over_maxh2cdata);
      break;
    }
    case PduType::r2t:
      out.r2t = {get<uint16_t>(h, kOffCccid), get<uint16_t>(h, kOffTtag), get<uint32_t>(h, kOffOffset),
                 get<uint32_t>(h, kOffLength)};
      if (out.r2t.r2tl == 0) return make_error(Violation::empty_data);
      break;
    default: return make_error(Violation::unknown_type);
  }
  return {};
}

}  // namespace sluice::nvme::tcp
