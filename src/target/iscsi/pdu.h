// The iSCSI PDU wire format (RFC 7143 section 11): the 48-byte Basic Header Segment of every
// opcode decoded into typed structs and encoded back, the AHS of a SCSI Command, digests and
// padding. A pure codec over bytes, apart from any socket, so that the target's server builds
// on it and it can be fuzzed on its own (tests/fuzz/iscsi_pdu_fuzz.cc). The streaming receiver
// is pdu_reader.h.
//
// Every integer on the wire is big-endian, except the digests: CRC32C (base/crc32c.h is the
// standard one, initial value and final XOR 0xffffffff) stored least significant byte first
// (RFC 7143 section 13.1 and its test vectors: 32 zero bytes give 0x8a9136aa, on the wire
// aa 36 91 8a). A data segment is padded with zeroes to a multiple of 4 bytes; the padding is
// not counted in DataSegmentLength but is covered by the data digest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sluice::iscsi {

// Which end a codec user is: it decides which opcodes it may receive.
enum class Role : uint8_t { initiator, target };

enum class Opcode : uint8_t {
  // Initiator to target.
  nop_out = 0x00,
  scsi_command = 0x01,
  task_mgmt_request = 0x02,
  login_request = 0x03,
  text_request = 0x04,
  data_out = 0x05,
  logout_request = 0x06,
  snack_request = 0x10,
  // Target to initiator.
  nop_in = 0x20,
  scsi_response = 0x21,
  task_mgmt_response = 0x22,
  login_response = 0x23,
  text_response = 0x24,
  data_in = 0x25,
  logout_response = 0x26,
  r2t = 0x31,
  async_message = 0x32,
  reject = 0x3f,
};
// "SCSI Command", ..., "unknown" for anything else (vendor-specific ones included).
std::string_view opcode_name(uint8_t opcode);
// Whether RFC 7143 defines the opcode (vendor-specific 0x1c-0x1e and 0x3c-0x3e are not decoded).
bool is_known_opcode(uint8_t opcode);
// The end that sends an opcode; meaningful for known opcodes only.
Role opcode_sender(uint8_t opcode);

inline constexpr size_t kBhsSize = 48;
inline constexpr size_t kDigestSize = 4;
// TotalAHSLength counts 4-byte words in one byte.
inline constexpr size_t kMaxAhsSize = 255 * 4;
// The most build_header() writes: BHS, the largest AHS it makes, header digest.
inline constexpr size_t kMaxHeaderSize = kBhsSize + kMaxAhsSize + kDigestSize;
// DataSegmentLength is 24 bits; MaxRecvDataSegmentLength is 512..2^24-1 (RFC 7143 13.12).
inline constexpr uint32_t kMaxDataSegmentLength = (1u << 24) - 1;
inline constexpr uint32_t kMinMaxRecvDataSegmentLength = 512;
// The default MaxRecvDataSegmentLength, which also holds for every login PDU.
inline constexpr uint32_t kDefaultMaxRecvDataSegmentLength = 8192;
// The ITT/TTT value meaning "none".
inline constexpr uint32_t kReservedTag = 0xffffffff;
// A CDB beyond 16 bytes continues in an Extended CDB AHS; SCSI CDBs are at most 260 bytes.
inline constexpr size_t kCdbSize = 16;
inline constexpr size_t kMaxExtendedCdb = 260 - kCdbSize;

// ---- Flag bits (byte 1 of the BHS) -------------------------------------------------------
inline constexpr uint8_t kFlagFinal = 0x80;                                    // F: last PDU of a sequence
inline constexpr uint8_t kFlagRead = 0x40;                                     // SCSI Command R
inline constexpr uint8_t kFlagWrite = 0x20;                                    // SCSI Command W
inline constexpr uint8_t kAttrMask = 0x07;                                     // SCSI Command ATTR
inline constexpr uint8_t kFlagContinue = 0x40;                                 // Text/Login C
inline constexpr uint8_t kFlagTransit = 0x80;                                  // Login T
inline constexpr uint8_t kFlagAck = 0x40;                                      // Data-In A
inline constexpr uint8_t kFlagBidiOverflow = 0x10, kFlagBidiUnderflow = 0x08;  // SCSI Response o, u
inline constexpr uint8_t kFlagOverflow = 0x04, kFlagUnderflow = 0x02;          // O, U
inline constexpr uint8_t kFlagStatus = 0x01;                                   // Data-In S
inline constexpr uint8_t kImmediate = 0x40;                                    // byte 0: I

// Task attributes (SCSI Command ATTR).
enum class TaskAttr : uint8_t { untagged = 0, simple = 1, ordered = 2, head_of_queue = 3, aca = 4 };

// Login stages (CSG/NSG).
enum class Stage : uint8_t { security = 0, operational = 1, full_feature = 3 };

// Reject reasons (RFC 7143 11.17.1).
enum class RejectReason : uint8_t {
  data_digest = 0x02,
  snack_reject = 0x03,
  protocol_error = 0x04,
  command_not_supported = 0x05,
  immediate_command_reject = 0x06,
  task_in_progress = 0x07,
  invalid_data_ack = 0x08,
  invalid_pdu_field = 0x09,
  out_of_resources = 0x0a,
  waiting_for_logout = 0x0c,
};

// ---- LUN ------------------------------------------------------------------------------------
// The 8-byte LUN field is carried as the big-endian integer of its bytes. Single-level LUNs:
// 0..255 in peripheral device addressing (byte 0 = 0), up to 16383 in flat space addressing
// (byte 0 = 0x40 | high bits), SAM-5 4.7.
uint64_t lun_from_index(uint16_t index);  // index < 16384
// The index of a single-level LUN in either method; nullopt for anything else.
std::optional<uint16_t> lun_to_index(uint64_t lun);

// ---- Headers, one struct per opcode --------------------------------------------------------
// ITT is at byte 16 of every BHS; tags that RFC 7143 fixes at 0xffffffff (Async Message,
// Reject) still carry it here. Fields a PDU reserves are not represented.

struct NopOut {
  bool immediate = false;
  uint64_t lun = 0;
  uint32_t itt = kReservedTag, ttt = kReservedTag, cmd_sn = 0, exp_stat_sn = 0;
  bool operator==(const NopOut&) const = default;
};
struct ScsiCommand {
  bool immediate = false, final = true, read = false, write = false;
  uint8_t attr = uint8_t(TaskAttr::simple);
  uint64_t lun = 0;
  uint32_t itt = 0, expected_data_length = 0, cmd_sn = 0, exp_stat_sn = 0;
  uint8_t cdb[kCdbSize] = {};
  bool operator==(const ScsiCommand&) const = default;
};
struct TaskMgmtRequest {
  bool immediate = true;
  uint8_t function = 0;  // 7 bits
  uint64_t lun = 0;
  uint32_t itt = 0, referenced_task_tag = kReservedTag, cmd_sn = 0, exp_stat_sn = 0, ref_cmd_sn = 0, exp_data_sn = 0;
  bool operator==(const TaskMgmtRequest&) const = default;
};
struct LoginRequest {  // the I bit is always set
  bool transit = false, cont = false;
  uint8_t csg = 0, nsg = 0;
  uint8_t version_max = 0, version_min = 0;
  uint8_t isid[6] = {};
  uint16_t tsih = 0, cid = 0;
  uint32_t itt = 0, cmd_sn = 0, exp_stat_sn = 0;
  bool operator==(const LoginRequest&) const = default;
};
struct TextRequest {
  bool immediate = false, final = true, cont = false;
  uint64_t lun = 0;
  uint32_t itt = 0, ttt = kReservedTag, cmd_sn = 0, exp_stat_sn = 0;
  bool operator==(const TextRequest&) const = default;
};
struct DataOut {
  bool final = false;
  uint64_t lun = 0;
  uint32_t itt = 0, ttt = kReservedTag, exp_stat_sn = 0, data_sn = 0, buffer_offset = 0;
  bool operator==(const DataOut&) const = default;
};
struct LogoutRequest {
  bool immediate = false;
  uint8_t reason = 0;  // 7 bits: 0 close session, 1 close connection, 2 remove for recovery
  uint16_t cid = 0;
  uint32_t itt = 0, cmd_sn = 0, exp_stat_sn = 0;
  bool operator==(const LogoutRequest&) const = default;
};
struct SnackRequest {
  uint8_t type = 0;  // 4 bits
  uint64_t lun = 0;
  uint32_t itt = kReservedTag, ttt = kReservedTag, exp_stat_sn = 0, beg_run = 0, run_length = 0;
  bool operator==(const SnackRequest&) const = default;
};
struct NopIn {
  uint64_t lun = 0;
  uint32_t itt = kReservedTag, ttt = kReservedTag, stat_sn = 0, exp_cmd_sn = 0, max_cmd_sn = 0;
  bool operator==(const NopIn&) const = default;
};
struct ScsiResponse {
  bool bidi_overflow = false, bidi_underflow = false, overflow = false, underflow = false;
  uint8_t response = 0, status = 0;
  uint32_t itt = 0, snack_tag = 0, stat_sn = 0, exp_cmd_sn = 0, max_cmd_sn = 0, exp_data_sn = 0, bidi_read_residual = 0,
           residual = 0;
  bool operator==(const ScsiResponse&) const = default;
};
struct TaskMgmtResponse {
  uint8_t response = 0;
  uint32_t itt = 0, stat_sn = 0, exp_cmd_sn = 0, max_cmd_sn = 0;
  bool operator==(const TaskMgmtResponse&) const = default;
};
struct LoginResponse {
  bool transit = false, cont = false;
  uint8_t csg = 0, nsg = 0;
  uint8_t version_max = 0, version_active = 0;
  uint8_t isid[6] = {};
  uint16_t tsih = 0;
  uint32_t itt = 0, stat_sn = 0, exp_cmd_sn = 0, max_cmd_sn = 0;
  uint8_t status_class = 0, status_detail = 0;
  bool operator==(const LoginResponse&) const = default;
};
struct TextResponse {
  bool final = true, cont = false;
  uint64_t lun = 0;
  uint32_t itt = 0, ttt = kReservedTag, stat_sn = 0, exp_cmd_sn = 0, max_cmd_sn = 0;
  bool operator==(const TextResponse&) const = default;
};
struct DataIn {
  bool final = false, ack = false, overflow = false, underflow = false, has_status = false;
  uint8_t status = 0;
  uint64_t lun = 0;
  uint32_t itt = 0, ttt = kReservedTag, stat_sn = 0, exp_cmd_sn = 0, max_cmd_sn = 0, data_sn = 0, buffer_offset = 0,
           residual = 0;
  bool operator==(const DataIn&) const = default;
};
struct LogoutResponse {
  uint8_t response = 0;
  uint32_t itt = 0, stat_sn = 0, exp_cmd_sn = 0, max_cmd_sn = 0;
  uint16_t time2wait = 0, time2retain = 0;
  bool operator==(const LogoutResponse&) const = default;
};
struct R2t {
  uint64_t lun = 0;
  uint32_t itt = 0, ttt = 0, stat_sn = 0, exp_cmd_sn = 0, max_cmd_sn = 0, r2t_sn = 0, buffer_offset = 0,
           desired_length = 0;
  bool operator==(const R2t&) const = default;
};
struct AsyncMessage {
  uint64_t lun = 0;
  uint32_t itt = kReservedTag, stat_sn = 0, exp_cmd_sn = 0, max_cmd_sn = 0;
  uint8_t async_event = 0, async_vcode = 0;
  uint16_t parameter1 = 0, parameter2 = 0, parameter3 = 0;
  bool operator==(const AsyncMessage&) const = default;
};
struct Reject {  // the data segment is the rejected PDU's BHS
  RejectReason reason = RejectReason::protocol_error;
  uint32_t itt = kReservedTag, stat_sn = 0, exp_cmd_sn = 0, max_cmd_sn = 0, data_sn = 0;
  bool operator==(const Reject&) const = default;
};

// The variant's alternatives are in opcode order within each direction.
using Header = std::variant<NopOut, ScsiCommand, TaskMgmtRequest, LoginRequest, TextRequest, DataOut, LogoutRequest,
                            SnackRequest, NopIn, ScsiResponse, TaskMgmtResponse, LoginResponse, TextResponse, DataIn,
                            LogoutResponse, R2t, AsyncMessage, Reject>;
Opcode header_opcode(const Header& h);

// The two AHS types RFC 7143 defines, both for SCSI Command only (11.2.2).
struct Ahs {
  uint16_t extended_cdb_length = 0;  // CDB bytes beyond the first 16
  uint8_t extended_cdb[kMaxExtendedCdb] = {};
  std::optional<uint32_t> bidi_read_length;  // Bidirectional Read Expected Data Transfer Length
  bool operator==(const Ahs&) const = default;
};

// A received PDU's header, decoded.
struct Pdu {
  Opcode opcode = Opcode::nop_out;
  uint32_t ahs_length = 0;   // bytes (TotalAHSLength * 4)
  uint32_t data_length = 0;  // DataSegmentLength, without padding
  Header header;
  Ahs ahs;
};

// ---- Errors ---------------------------------------------------------------------------------

enum class Violation : uint8_t {
  none,
  unknown_opcode,   // an opcode RFC 7143 does not define (or vendor-specific)
  wrong_direction,  // an opcode only the receiving end sends
  ahs_too_long,     // TotalAHSLength beyond the receiver's bound
  bad_ahs,          // AHS on a PDU other than SCSI Command, or malformed
  data_over_limit,  // DataSegmentLength beyond MaxRecvDataSegmentLength
  unexpected_data,  // a data segment on a PDU that may not carry one
  bad_field,        // a field with a value RFC 7143 forbids
  header_digest,    // header digest mismatch
  data_digest,      // data digest mismatch
};
std::string_view violation_name(Violation v);

struct PduError {
  Violation what = Violation::none;
  RejectReason reason = RejectReason::protocol_error;  // what a Reject PDU says about it
  std::string message;                                 // for logs: which field, which value

  bool ok() const { return what == Violation::none; }
  // Whether the stream can no longer be trusted (lengths unknown or absurd): close the
  // connection. Otherwise the PDU was skipped whole; answer with a Reject and go on.
  bool fatal() const {
    return what == Violation::header_digest || what == Violation::data_over_limit || what == Violation::ahs_too_long;
  }
};

// What the receiving end agreed.
struct RxParams {
  bool header_digest = false;
  bool data_digest = false;
  // This end's declared MaxRecvDataSegmentLength (8192 until login sets another).
  uint32_t max_recv_data_segment_length = kDefaultMaxRecvDataSegmentLength;
  // Any TotalAHSLength beyond this many bytes is fatal (the format allows 1020).
  uint32_t max_ahs_length = 264;
};

// Decodes a BHS (kBhsSize bytes) and makes the checks the header alone allows. On error
// out.opcode and the lengths are still filled in when the header is structurally readable.
PduError decode_bhs(const uint8_t* bhs, Role receiver, const RxParams& rx, Pdu& out);
// Decodes the AHS of `pdu` (pdu.ahs_length bytes at `ahs`) into pdu.ahs.
PduError decode_ahs(const uint8_t* ahs, Pdu& pdu);

// ---- Builders -------------------------------------------------------------------------------

struct TxParams {
  bool header_digest = false;
  bool data_digest = false;
};

// Writes the header of a PDU carrying `data_length` data bytes: BHS, the AHS (SCSI Command
// only, when `ahs` has anything), the header digest. Returns its length; `out` must hold
// kMaxHeaderSize bytes. The data follows from the caller's buffers, then padding_length()
// zero bytes, then (data digests on, data_length > 0) the data digest.
size_t build_header(uint8_t* out, const TxParams& tx, const Header& h, uint32_t data_length, const Ahs* ahs = nullptr);
// Appends a whole PDU (header, data, padding, data digest) to `out`: for small PDUs (login,
// text, Reject, sense data) and for tests.
void append_pdu(std::vector<uint8_t>& out, const TxParams& tx, const Header& h, std::span<const uint8_t> data = {},
                const Ahs* ahs = nullptr);

inline constexpr size_t padding_length(size_t data_length) { return (4 - data_length % 4) % 4; }

// The header digest of a BHS plus AHS.
uint32_t header_digest(std::span<const uint8_t> header);
// The data digest, extended over one more buffer (start with 0); finish_data_digest() adds
// the padding of a `data_length`-byte segment.
uint32_t extend_data_digest(uint32_t crc, std::span<const uint8_t> data);
uint32_t finish_data_digest(uint32_t crc, size_t data_length);
// Both at once for one buffer.
uint32_t data_digest(std::span<const uint8_t> data);
// The 4 bytes of a digest as they go on the wire, and back.
void put_digest(uint8_t* out, uint32_t digest);
uint32_t get_digest(const uint8_t* in);

}  // namespace sluice::iscsi
