// The NBD wire protocol (NetworkBlockDevice/nbd doc/proto.md): constants and a codec of pure
// functions over byte spans, apart from any socket so that it can be fuzzed
// (tests/fuzz/nbd_protocol_fuzz.cc). All integers on the wire are big-endian.
//
// Supported: the fixed newstyle handshake; options EXPORT_NAME, INFO, GO, LIST, ABORT,
// STRUCTURED_REPLY, LIST_META_CONTEXT and SET_META_CONTEXT (the one context "base:allocation";
// others get NBD_REP_ERR_UNSUP); commands READ, WRITE, FLUSH, TRIM, WRITE_ZEROES (NO_HOLE,
// FAST_ZERO), BLOCK_STATUS (REQ_ONE), DISC and the FUA flag. Not supported: CACHE, extended
// headers, TLS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::nbd::proto {

inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943ull;  // "NBDMAGIC"
inline constexpr uint64_t kOptMagic = 0x49484156454F5054ull;  // "IHAVEOPT"
inline constexpr uint64_t kRepMagic = 0x3e889045565a9ull;     // option replies
inline constexpr uint32_t kRequestMagic = 0x25609513u;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698u;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33efu;

// Handshake flags (server) and client flags.
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientNoZeroes = 1 << 1;

// Transmission flags.
inline constexpr uint16_t kTxHasFlags = 1 << 0;
inline constexpr uint16_t kTxReadOnly = 1 << 1;
inline constexpr uint16_t kTxSendFlush = 1 << 2;
inline constexpr uint16_t kTxSendFua = 1 << 3;
inline constexpr uint16_t kTxSendTrim = 1 << 5;
inline constexpr uint16_t kTxSendWriteZeroes = 1 << 6;
inline constexpr uint16_t kTxCanMultiConn = 1 << 8;
inline constexpr uint16_t kTxSendFastZero = 1 << 11;

enum Option : uint32_t {
  kOptExportName = 1,
  kOptAbort = 2,
  kOptList = 3,
  kOptStartTls = 5,
  kOptInfo = 6,
  kOptGo = 7,
  kOptStructuredReply = 8,
  kOptListMetaContext = 9,
  kOptSetMetaContext = 10,
};

inline constexpr uint32_t kRepAck = 1;
inline constexpr uint32_t kRepServer = 2;
inline constexpr uint32_t kRepInfo = 3;
inline constexpr uint32_t kRepMetaContext = 4;
inline constexpr uint32_t kRepErrUnsup = 0x80000001u;
inline constexpr uint32_t kRepErrPolicy = 0x80000002u;
inline constexpr uint32_t kRepErrInvalid = 0x80000003u;
inline constexpr uint32_t kRepErrUnknown = 0x80000006u;
inline constexpr uint32_t kRepErrShutdown = 0x80000007u;

inline constexpr uint16_t kInfoExport = 0;
inline constexpr uint16_t kInfoName = 1;
inline constexpr uint16_t kInfoBlockSize = 3;

enum Command : uint16_t {
  kCmdRead = 0,
  kCmdWrite = 1,
  kCmdDisc = 2,
  kCmdFlush = 3,
  kCmdTrim = 4,
  kCmdWriteZeroes = 6,
  kCmdBlockStatus = 7,
};

inline constexpr uint16_t kCmdFlagFua = 1 << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1 << 1;
inline constexpr uint16_t kCmdFlagDf = 1 << 2;  // READ: don't fragment; one chunk is all we send
inline constexpr uint16_t kCmdFlagReqOne = 1 << 3;  // BLOCK_STATUS: one extent, within the length
inline constexpr uint16_t kCmdFlagFastZero = 1 << 4;

inline constexpr uint16_t kReplyFlagDone = 1 << 0;
inline constexpr uint16_t kReplyTypeNone = 0;
inline constexpr uint16_t kReplyTypeOffsetData = 1;
inline constexpr uint16_t kReplyTypeBlockStatus = 5;
inline constexpr uint16_t kReplyTypeError = 0x8001;

// The one metadata context: which extents are allocated, and which read as zeroes.
inline constexpr std::string_view kBaseAllocation = "base:allocation";
inline constexpr uint32_t kBaseAllocationId = 1;  // its id in SET_META_CONTEXT's reply
inline constexpr uint32_t kStateHole = 1 << 0;
inline constexpr uint32_t kStateZero = 1 << 1;

// Error values on the wire (errno numbers the spec fixes).
inline constexpr uint32_t kEperm = 1;
inline constexpr uint32_t kEio = 5;
inline constexpr uint32_t kEnomem = 12;
inline constexpr uint32_t kEinval = 22;
inline constexpr uint32_t kEnospc = 28;
inline constexpr uint32_t kEoverflow = 75;
inline constexpr uint32_t kEnotsup = 95;
inline constexpr uint32_t kEshutdown = 108;

inline constexpr size_t kOptionHeaderSize = 16;
inline constexpr size_t kRequestSize = 28;
inline constexpr size_t kSimpleReplySize = 16;
inline constexpr size_t kStructuredReplySize = 20;
// Option payloads larger than this are refused (the connection closes): names are short.
inline constexpr uint32_t kMaxOptionLength = 4096;
inline constexpr size_t kMaxNameLength = 4096;

// ---- Big-endian coding --------------------------------------------------------------------

void put16(uint8_t* p, uint16_t v);
void put32(uint8_t* p, uint32_t v);
void put64(uint8_t* p, uint64_t v);
uint16_t get16(const uint8_t* p);
uint32_t get32(const uint8_t* p);
uint64_t get64(const uint8_t* p);

// ---- Transmission phase -------------------------------------------------------------------

struct Request {
  uint16_t flags = 0;
  uint16_t type = 0;
  uint64_t cookie = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
};

// A request header from exactly kRequestSize bytes; nullopt when the magic is wrong (the
// stream cannot be trusted any more: close the connection).
std::optional<Request> parse_request(std::span<const uint8_t, kRequestSize> bytes);

// What the server knows about an export, for validation and negotiation.
struct ExportLimits {
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;
  uint32_t max_payload = 32u << 20;
  bool read_only = false;
  // What the device does (bdev Geometry::supports): TRIM and WRITE_ZEROES are advertised and
  // accepted only if it does. A device without FLUSH has no volatile cache to flush.
  bool can_trim = true;
  bool can_write_zeroes = true;
  // The client selected base:allocation for this export (SET_META_CONTEXT): BLOCK_STATUS
  // is allowed.
  bool block_status = false;
};

// 0 if the request may run; else the NBD error to reply with. A WRITE's payload follows on
// the wire either way and must be consumed (or skipped) before the next header.
uint32_t validate(const Request& r, const ExportLimits& limits);

uint16_t transmission_flags(const ExportLimits& limits);

// Reply headers into `out`; return the bytes written.
size_t build_simple_reply(uint8_t* out, uint32_t error, uint64_t cookie);
size_t build_structured_header(uint8_t* out, uint16_t flags, uint16_t type, uint64_t cookie, uint32_t length);
// A final OFFSET_DATA chunk header plus its 8-byte offset: kStructuredReplySize + 8 bytes;
// `data_len` bytes of data follow.
size_t build_read_chunk(uint8_t* out, uint64_t cookie, uint64_t offset, uint32_t data_len);
// A final ERROR chunk without a message: kStructuredReplySize + 6 bytes.
size_t build_error_chunk(uint8_t* out, uint64_t cookie, uint32_t error);

// One BLOCK_STATUS extent: `length` bytes with kState* flags.
struct Extent {
  uint32_t length = 0;
  uint32_t flags = 0;
};
// The payload of a BLOCK_STATUS chunk for base:allocation (4 + 8 * extents.size() bytes at
// `out`); its header is build_structured_header(.., kReplyFlagDone, kReplyTypeBlockStatus, ..).
size_t build_block_status_payload(uint8_t* out, std::span<const Extent> extents);

// ---- Handshake ----------------------------------------------------------------------------

// The server's greeting: NBDMAGIC, IHAVEOPT, handshake flags.
std::vector<uint8_t> greeting();

struct ExportView {
  std::string name;
  ExportLimits limits;
};
// Looks an export up by name ("" is the default export: the server's first, if any).
using ExportLookup = std::function<std::optional<ExportView>(std::string_view name)>;
using ExportNames = std::function<std::vector<std::string>()>;

// The option-haggling state machine: feed it the client's bytes, send what it appends to
// `out`. It never reads past what it is given and needs no socket.
class Handshake {
 public:
  enum class State : uint8_t { client_flags, options, transmission, closed };

  Handshake(ExportLookup lookup, ExportNames names) : lookup_(std::move(lookup)), names_(std::move(names)) {}

  // Consumes a prefix of `in` (a whole client-flags field or option, or nothing if it is
  // incomplete) and returns its length. Call again while it consumes and the state is not
  // transmission or closed.
  size_t feed(std::span<const uint8_t> in, std::vector<uint8_t>& out);

  State state() const { return state_; }
  // Once in transmission: the export chosen and whether structured replies were agreed.
  const ExportView& chosen() const { return chosen_; }
  bool structured_replies() const { return structured_; }
  // Once in transmission: base:allocation was selected for the export chosen.
  bool block_status() const {
    return state_ == State::transmission && meta_allocation_ && meta_export_ == chosen_.name;
  }
  // Why the handshake closed (for the log).
  const std::string& error() const { return error_; }

 private:
  void option(uint32_t opt, std::span<const uint8_t> data, std::vector<uint8_t>& out);
  void info_or_go(uint32_t opt, std::span<const uint8_t> data, std::vector<uint8_t>& out);
  void meta_context(uint32_t opt, std::span<const uint8_t> data, std::vector<uint8_t>& out);
  void close(std::string why);

  ExportLookup lookup_;
  ExportNames names_;
  State state_ = State::client_flags;
  bool no_zeroes_ = false;
  bool structured_ = false;
  // SET_META_CONTEXT's last selection: base:allocation or nothing, for this export name.
  bool meta_allocation_ = false;
  std::string meta_export_;
  ExportView chosen_;
  std::string error_;
};

void append_option_reply(std::vector<uint8_t>& out, uint32_t opt, uint32_t type, std::span<const uint8_t> data = {});

}  // namespace sluice::nbd::proto
