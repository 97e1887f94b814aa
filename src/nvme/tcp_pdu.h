// The NVMe/TCP PDU wire format (NVMe over TCP transport, TP 8000 / transport spec 1.0):
// constants, the decoded form of each PDU header, builders, and the checks a receiver makes
// on a header. A pure codec over bytes, apart from any socket, shared by the target
// (src/target/nvmf) and the initiator, and fuzzed on its own (tests/fuzz/nvme_tcp_pdu_fuzz.cc).
// The streaming receiver is tcp_pdu_reader.h; docs/nvme-tcp.md says what is accepted.
//
// Every integer on the wire is little-endian; the SQE and CQE travel in their in-memory
// layout (x86 only, like the rest of src/nvme). Digests are CRC32C stored little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "nvme/nvme_spec.h"

namespace sluice::nvme::tcp {

// Which end of the connection a codec user is: it decides which PDUs it may receive.
enum class Role : uint8_t { host, controller };

enum class PduType : uint8_t {
  ic_req = 0x00,
  ic_resp = 0x01,
  h2c_term_req = 0x02,
  c2h_term_req = 0x03,
  capsule_cmd = 0x04,
  capsule_resp = 0x05,
  h2c_data = 0x06,
  c2h_data = 0x07,
  r2t = 0x09,
};
std::string_view pdu_type_name(uint8_t type);

// Common header flags.
inline constexpr uint8_t kFlagHdgst = 1u << 0;    // a header digest follows the header
inline constexpr uint8_t kFlagDdgst = 1u << 1;    // a data digest follows the data
inline constexpr uint8_t kFlagLastPdu = 1u << 2;  // H2CData/C2HData: last PDU of the transfer
inline constexpr uint8_t kFlagSuccess = 1u << 3;  // C2HData: no CapsuleResp follows

// ICReq/ICResp DGST bits.
inline constexpr uint8_t kDigestHeader = 1u << 0;
inline constexpr uint8_t kDigestData = 1u << 1;

// Offsets of the common header fields, which a TermReq's FEI names.
inline constexpr uint32_t kOffType = 0, kOffFlags = 1, kOffHlen = 2, kOffPdo = 3, kOffPlen = 4;

inline constexpr size_t kCommonHeaderSize = 8;
inline constexpr size_t kDigestSize = 4;
inline constexpr size_t kIcHeaderSize = 128;   // ICReq, ICResp (also their plen)
inline constexpr size_t kTermHeaderSize = 24;  // H2CTermReq, C2HTermReq
inline constexpr size_t kCmdHeaderSize = 72;   // CapsuleCmd: 8 + the 64-byte SQE
inline constexpr size_t kRespHeaderSize = 24;  // CapsuleResp: 8 + the 16-byte CQE
inline constexpr size_t kDataHeaderSize = 24;  // H2CData, C2HData
inline constexpr size_t kR2tHeaderSize = 24;
// A TermReq carries at most the largest header (128 bytes), so at most 152 bytes in all.
inline constexpr size_t kMaxTermData = 128;
inline constexpr size_t kMaxTermPdu = kTermHeaderSize + kMaxTermData;
// The largest header: what a receiver holds before any data (plus a digest).
inline constexpr size_t kMaxHeaderSize = kIcHeaderSize;
// The most a builder writes: a whole TermReq; a data PDU's header, digest and padding to the
// largest alignment (128 bytes) are less.
inline constexpr size_t kMaxBuiltSize = kMaxTermPdu;
// MAXH2CDATA may not be below this (and is a multiple of 4).
inline constexpr uint32_t kMinMaxH2cData = 4096;
// HPDA/CPDA: 0's based dwords, at most 31 (128-byte alignment).
inline constexpr uint8_t kMaxPda = 31;

// The fixed header length of a PDU type; 0 for a type the spec does not define.
uint8_t header_length(uint8_t type);

// Fatal Error Status, the FES of a TermReq.
enum class Fes : uint16_t {
  none = 0x00,  // not fatal or not to be reported (a data digest error; a received TermReq)
  invalid_header_field = 0x01,
  pdu_sequence = 0x02,
  header_digest = 0x03,
  data_out_of_range = 0x04,
  r2t_limit_exceeded = 0x05,  // later revisions: Data Transfer Limit Exceeded (MAXH2CDATA)
  unsupported_parameter = 0x06,
};

// ---- Decoded headers ------------------------------------------------------------------------

struct IcReq {
  uint16_t pfv = 0;
  uint8_t hpda = 0;     // the alignment the host wants for C2H data: (hpda + 1) * 4 bytes
  uint8_t digest = 0;   // kDigestHeader | kDigestData requested
  uint32_t maxr2t = 0;  // 0's based: outstanding R2Ts per command
};

struct IcResp {
  uint16_t pfv = 0;
  uint8_t cpda = 0;    // the alignment the controller wants for H2C data
  uint8_t digest = 0;  // the digests enabled from now on
  uint32_t maxh2cdata = kMinMaxH2cData;
};

struct TermReq {
  uint16_t fes = 0;
  uint32_t fei = 0;
};

// H2CData and C2HData. TTAG is reserved in C2HData.
struct DataHeader {
  uint16_t cccid = 0;
  uint16_t ttag = 0;
  uint32_t datao = 0;
  uint32_t datal = 0;
  bool last = false;
  bool success = false;  // C2HData only; needs last
};

struct R2t {
  uint16_t cccid = 0;
  uint16_t ttag = 0;
  uint32_t r2to = 0;
  uint32_t r2tl = 0;
};

// A received header, decoded. Only the part for `type` is meaningful.
struct Pdu {
  PduType type = PduType::ic_req;
  uint8_t flags = 0;
  uint8_t hlen = 0;
  uint8_t pdo = 0;
  uint32_t plen = 0;
  uint32_t data_length = 0;  // the data bytes between PDO and the data digest
  IcReq ic_req;
  IcResp ic_resp;
  TermReq term;
  spec::Sqe sqe{};
  spec::Cqe cqe{};
  DataHeader data;
  R2t r2t;
};

// ---- Builders ---------------------------------------------------------------------------------
// Each writes a PDU's header (plus header digest and padding when the PDU has them) into
// `out` and returns its length; the data (if any) goes on the wire straight after it from the
// caller's own buffers, then data_digest() of it when data digests are on. `out` must hold
// kMaxBuiltSize bytes.

// What the sender agreed with its peer.
struct TxParams {
  bool header_digest = false;
  bool data_digest = false;
  // The peer's alignment for data PDUs this end sends (0's based dwords): a host sends CPDA
  // (from ICResp), a controller HPDA (from ICReq).
  uint8_t pda = 0;
};

size_t build_ic_req(uint8_t* out, const IcReq& req);
size_t build_ic_resp(uint8_t* out, const IcResp& resp);
// A TermReq with (up to kMaxTermData bytes of) the offending PDU's header, written whole:
// this is the only builder that copies its data. A host sends H2C, a controller C2H.
size_t build_term_req(uint8_t* out, Role sender, Fes fes, uint32_t fei, std::span<const uint8_t> offending);
// A command capsule with `data_len` bytes of in-capsule data (0: none).
size_t build_capsule_cmd(uint8_t* out, const TxParams& tx, const spec::Sqe& sqe, uint32_t data_len);
size_t build_capsule_resp(uint8_t* out, const TxParams& tx, const spec::Cqe& cqe);
// H2CData (host) or C2HData (controller); h.datal bytes of data follow. `last` and `success`
// set LAST_PDU and SUCCESS.
size_t build_data(uint8_t* out, Role sender, const TxParams& tx, const DataHeader& h);
size_t build_r2t(uint8_t* out, const TxParams& tx, const R2t& r);

// The data digest over one buffer, or extended over several (pass the previous result).
uint32_t data_digest(std::span<const uint8_t> data, uint32_t previous = 0);
// The 4 bytes of a digest as they go on the wire.
void put_digest(uint8_t* out, uint32_t digest);
uint32_t get_digest(const uint8_t* in);

// ---- Receive-side checks ------------------------------------------------------------------------

// What a violation was; each comes with the FES and FEI a TermReq reports.
enum class Violation : uint8_t {
  none,
  unknown_type,             // PDU-type the spec does not define
  wrong_direction,          // a PDU this role never receives (a host sent ICResp, ...)
  before_connection,        // anything but ICReq/ICResp (or a TermReq) before the IC exchange
  repeated_ic,              // a second ICReq/ICResp
  after_term_req,           // bytes after the peer's TermReq
  bad_hlen,                 // HLEN does not match the type
  bad_flags,                // a flag the type does not allow (SUCCESS without LAST_PDU, ...)
  digest_not_negotiated,    // HDGSTF/DDGSTF set without the digest agreed (or a digest on IC/TermReq)
  digest_missing,           // HDGSTF/DDGSTF clear although the digest was agreed
  bad_pdo,                  // PDO below the header, misaligned, or past PLEN
  bad_plen,                 // PLEN inconsistent with HLEN/PDO/digests/DATAL
  plen_over_limit,          // PLEN beyond the receiver's bound
  data_over_maxh2cdata,     // H2CData DATAL beyond MAXH2CDATA
  capsule_data_over_limit,  // in-capsule data beyond the controller's bound
  empty_data,               // H2CData/C2HData with DATAL 0, or an R2T with R2TL 0
  header_digest,            // header digest mismatch
  data_digest,              // data digest mismatch (not fatal: the command fails, the stream goes on)
  bad_pfv,                  // ICReq/ICResp PFV other than 1.0
  bad_pda,                  // HPDA/CPDA above 31
  bad_maxh2cdata,           // ICResp MAXH2CDATA below 4096 or not a multiple of 4
  term_data_too_long,       // a TermReq longer than 152 bytes
  data_out_of_range,        // (caller) DATAO/DATAL outside what the R2T or command allows
  r2t_limit_exceeded,       // (caller) more R2Ts outstanding than MAXR2T allows
};
std::string_view violation_name(Violation v);

struct PduError {
  Violation what = Violation::none;
  Fes fes = Fes::none;
  uint32_t fei = 0;  // byte offset of the field in error (invalid_header_field, unsupported_parameter)

  bool ok() const { return what == Violation::none; }
  // Whether the connection is over (a TermReq with `fes` goes out first if it is not none).
  bool fatal() const { return what != Violation::none && what != Violation::data_digest; }
};

// A violation with the FES and FEI the spec gives it. Callers use it for the checks only they
// can make (data_out_of_range, r2t_limit_exceeded, a PDU out of sequence for a command).
PduError make_error(Violation what);

// What the receiving end agreed; before the IC exchange, only the defaults hold.
struct RxParams {
  bool header_digest = false;
  bool data_digest = false;
  // This end's own alignment for data it receives (0's based dwords): a controller's CPDA,
  // a host's HPDA. PDO must be a multiple of it.
  uint8_t pda = 0;
  // Controller: the MAXH2CDATA it announced; H2CData DATAL may not exceed it.
  uint32_t maxh2cdata = 128 * 1024;
  // Controller: the most in-capsule data a command may carry (IOCCSZ less the SQE).
  uint32_t max_capsule_data = 8192;
  // Any PDU longer than this is refused before its data is read (keep it >= kMaxTermPdu, or
  // even an ICReq or a TermReq is refused).
  uint32_t max_plen = 1u << 20;
};

// The checks on a common header alone (type, direction, HLEN, flags, PDO, PLEN and the
// bounds), the first 8 bytes of a PDU. `connected` is whether the IC exchange is done.
PduError check_common(const uint8_t* common, Role receiver, bool connected, const RxParams& rx);

// Decodes a whole header (hlen bytes, check_common() passed) and makes the type's own checks.
PduError decode_header(const uint8_t* header, const RxParams& rx, Pdu& out);

}  // namespace sluice::nvme::tcp
