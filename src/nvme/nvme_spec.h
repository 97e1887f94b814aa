// What the NVMe base specification (1.4) and NVMe over Fabrics (1.1) fix: register offsets
// and fields, the layout of submission and completion queue entries, opcodes, the identify
// and log structures, and the fabrics commands. Shared by the driver, the software
// controller model and the NVMe-oF target; nothing here is Sluice's own choice.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sluice::nvme::spec {

// ---- Controller registers (BAR0) -------------------------------------------------------
inline constexpr uint32_t kRegCap = 0x00;    // 64-bit capabilities
inline constexpr uint32_t kRegVs = 0x08;     // version
inline constexpr uint32_t kRegIntms = 0x0c;  // interrupt mask set
inline constexpr uint32_t kRegIntmc = 0x10;  // interrupt mask clear
inline constexpr uint32_t kRegCc = 0x14;     // controller configuration
inline constexpr uint32_t kRegCsts = 0x1c;   // controller status
inline constexpr uint32_t kRegAqa = 0x24;    // admin queue attributes
inline constexpr uint32_t kRegAsq = 0x28;    // 64-bit admin SQ base
inline constexpr uint32_t kRegAcq = 0x30;    // 64-bit admin CQ base
inline constexpr uint32_t kRegDoorbells = 0x1000;
// The memory page size the driver programs (CC.MPS = 0): PRP entries and admin buffers use it.
inline constexpr uint32_t kPage = 4096;

inline uint32_t cap_mqes(uint64_t cap) { return static_cast<uint32_t>(cap & 0xffff) + 1; }  // entries
inline bool cap_cqr(uint64_t cap) { return (cap >> 16) & 1; }
inline uint32_t cap_to_ms(uint64_t cap) { return static_cast<uint32_t>((cap >> 24) & 0xff) * 500; }
inline uint32_t cap_dstrd(uint64_t cap) { return static_cast<uint32_t>((cap >> 32) & 0xf); }
inline bool cap_css_nvm(uint64_t cap) { return (cap >> 37) & 1; }
inline uint32_t cap_mpsmin(uint64_t cap) { return static_cast<uint32_t>((cap >> 48) & 0xf); }
inline uint32_t cap_mpsmax(uint64_t cap) { return static_cast<uint32_t>((cap >> 52) & 0xf); }

inline constexpr uint32_t kCcEnable = 1u << 0;
inline constexpr uint32_t kCcShnNormal = 1u << 14;
inline constexpr uint32_t kCcShnMask = 3u << 14;
inline constexpr uint32_t cc_iosqes(uint32_t log2) { return log2 << 16; }
inline constexpr uint32_t cc_iocqes(uint32_t log2) { return log2 << 20; }
inline constexpr uint32_t cc_mps(uint32_t v) { return v << 7; }
inline uint32_t cc_get_mps(uint32_t cc) { return (cc >> 7) & 0xf; }
inline uint32_t cc_get_iosqes(uint32_t cc) { return (cc >> 16) & 0xf; }
inline uint32_t cc_get_iocqes(uint32_t cc) { return (cc >> 20) & 0xf; }
inline uint32_t cc_get_css(uint32_t cc) { return (cc >> 4) & 0x7; }

inline constexpr uint32_t kCstsRdy = 1u << 0;
inline constexpr uint32_t kCstsCfs = 1u << 1;
inline constexpr uint32_t kCstsShstMask = 3u << 2;
inline constexpr uint32_t kCstsShstComplete = 2u << 2;

// Doorbell offsets for queue `qid` with stride CAP.DSTRD.
inline uint32_t sq_doorbell(uint16_t qid, uint32_t dstrd) { return kRegDoorbells + (2u * qid) * (4u << dstrd); }
inline uint32_t cq_doorbell(uint16_t qid, uint32_t dstrd) { return kRegDoorbells + (2u * qid + 1) * (4u << dstrd); }

// ---- Queue entries ---------------------------------------------------------------------
struct Sqe {
  uint8_t opc;
  uint8_t flags;  // FUSE 1:0, PSDT 7:6 (0: PRPs)
  uint16_t cid;
  uint32_t nsid;
  uint32_t cdw2, cdw3;
  uint64_t mptr;
  uint64_t prp1, prp2;
  uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
static_assert(sizeof(Sqe) == 64);

struct Cqe {
  uint32_t dw0;
  uint32_t dw1;
  uint16_t sqhd;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // phase 0, SC 8:1, SCT 11:9, CRD 13:12, M 14, DNR 15
};
static_assert(sizeof(Cqe) == 16);

inline constexpr uint16_t status_phase(uint16_t s) { return s & 1; }
inline constexpr uint8_t status_sc(uint16_t s) { return static_cast<uint8_t>(s >> 1); }
inline constexpr uint8_t status_sct(uint16_t s) { return (s >> 9) & 7; }
inline constexpr bool status_dnr(uint16_t s) { return (s >> 15) & 1; }
inline constexpr uint16_t make_status(uint8_t sct, uint8_t sc, bool dnr = false) {
  return static_cast<uint16_t>((uint16_t{sc} << 1) | (uint16_t{sct} << 9) | (dnr ? 0x8000 : 0));
}

// Status code types and the codes this driver and the model name.
inline constexpr uint8_t kSctGeneric = 0, kSctCommandSpecific = 1, kSctMedia = 2;
inline constexpr uint8_t kScSuccess = 0x00, kScInvalidOpcode = 0x01, kScInvalidField = 0x02,
                         kScDataTransferError = 0x04, kScInternalError = 0x06, kScAbortRequested = 0x07,
                         kScAbortedSqDeletion = 0x08, kScInvalidNamespace = 0x0b, kScPrpOffsetInvalid = 0x13,
                         kScLbaOutOfRange = 0x80;
inline constexpr uint8_t kScCompletionQueueInvalid = 0x00, kScInvalidQueueId = 0x01, kScInvalidQueueSize = 0x02,
                         kScInvalidLogPage = 0x09, kScInvalidQueueDeletion = 0x0c;
inline constexpr uint8_t kScWriteFault = 0x80, kScUnrecoveredReadError = 0x81, kScCompareFailure = 0x85;
// More generic codes (SCT 0).
inline constexpr uint8_t kScCommandSequenceError = 0x0c, kScDataSglLengthInvalid = 0x0f,
                         kScNamespaceNotReady = 0x82;
// More command-specific codes (SCT 1).
inline constexpr uint8_t kScAsyncEventLimitExceeded = 0x05, kScFeatureNotChangeable = 0x0e;
// Fabrics command-specific codes (SCT 1, for fabrics commands only).
inline constexpr uint8_t kScFabricsIncompatibleFormat = 0x80, kScFabricsControllerBusy = 0x81,
                         kScFabricsInvalidParameters = 0x82, kScFabricsRestartDiscovery = 0x83,
                         kScFabricsInvalidHost = 0x84;

// ---- Opcodes -----------------------------------------------------------------------------
inline constexpr uint8_t kAdminDeleteSq = 0x00, kAdminCreateSq = 0x01, kAdminGetLogPage = 0x02,
                         kAdminDeleteCq = 0x04, kAdminCreateCq = 0x05, kAdminIdentify = 0x06, kAdminAbort = 0x08,
                         kAdminSetFeatures = 0x09, kAdminGetFeatures = 0x0a, kAdminAsyncEventRequest = 0x0c,
                         kAdminKeepAlive = 0x18;
inline constexpr uint8_t kIoFlush = 0x00, kIoWrite = 0x01, kIoRead = 0x02, kIoCompare = 0x05,
                         kIoWriteZeroes = 0x08, kIoDatasetManagement = 0x09;
// Read, Write, Compare, Write Zeroes: CDW12 holds NLB (0-based) and the FUA bit.
inline constexpr uint32_t kRwFua = 1u << 30;

inline constexpr uint8_t kCnsNamespace = 0x00, kCnsController = 0x01, kCnsActiveNamespaces = 0x02,
                         kCnsNamespaceIdDescriptors = 0x03;
inline constexpr uint8_t kFeatureNumberOfQueues = 0x07, kFeatureVolatileWriteCache = 0x06,
                         kFeatureAsyncEventConfig = 0x0b, kFeatureKeepAliveTimer = 0x0f;
inline constexpr uint8_t kLogError = 0x01, kLogSmart = 0x02, kLogChangedNamespaces = 0x04, kLogDiscovery = 0x70;
inline constexpr uint32_t kDsmDeallocate = 1u << 2;

// Namespace identification descriptor types (Identify CNS 03h): EUI-64 (8 bytes), NGUID and
// UUID (16 each), each after a 4-byte header (type, length, 2 reserved).
inline constexpr uint8_t kNidtEui64 = 1, kNidtNguid = 2, kNidtUuid = 3;

// Asynchronous events: the completion's DW0 is type | info << 8 | log page << 16.
inline constexpr uint8_t kAsyncEventTypeNotice = 2;
inline constexpr uint8_t kAsyncEventNamespaceAttributeChanged = 0;
inline constexpr uint32_t kAecNamespaceAttributeNotices = 1u << 8;  // Async Event Configuration bit
inline constexpr uint32_t async_event(uint8_t type, uint8_t info, uint8_t log_page) {
  return uint32_t{type} | uint32_t{info} << 8 | uint32_t{log_page} << 16;
}
// The changed namespace list holds up to 1024 NSIDs; more report FFFFFFFFh alone.
inline constexpr uint32_t kChangedNamespaceListMax = 1024;

// ---- Identify controller (4096 bytes): offsets of the fields read -------------------------
namespace idc {
inline constexpr size_t kVid = 0, kSsvid = 2, kSn = 4, kMn = 24, kFr = 64, kMdts = 77, kCntlid = 78, kVer = 80,
                        kOacs = 256, kAcl = 258, kElpe = 262, kSqes = 512, kCqes = 513, kNn = 516, kOncs = 520,
                        kVwc = 525, kSgls = 536, kSubnqn = 768;
inline constexpr size_t kRab = 72, kIeee = 73, kCmic = 76, kOaes = 92, kCtratt = 96, kCntrltype = 111,
                        kAerl = 259, kFrmw = 260, kLpa = 261, kKas = 320, kMaxcmd = 514, kFuses = 522, kFna = 524,
                        kAwun = 526, kAwupf = 528;
// The fabrics fields (NVMe-oF 1.1, 4.1): capsule sizes in 16-byte units, in-capsule data offset.
inline constexpr size_t kIoccsz = 1792, kIorcsz = 1796, kIcdoff = 1800, kFcatt = 1802, kMsdbd = 1803;
inline constexpr uint16_t kOncsCompare = 1u << 0, kOncsDsm = 1u << 2, kOncsWriteZeroes = 1u << 3;
inline constexpr uint32_t kOaesNamespaceAttribute = 1u << 8;
inline constexpr uint8_t kLpaSmartPerNamespace = 1u << 0, kLpaExtendedData = 1u << 2;
inline constexpr uint8_t kCntrltypeIo = 1, kCntrltypeDiscovery = 2;
// SGL support: bit 0 SGLs (no alignment rule), bit 2 keyed data block descriptors (RDMA),
// bit 20 the offset form (in-capsule data).
inline constexpr uint32_t kSglsSupported = 1u << 0, kSglsKeyed = 1u << 2, kSglsOffset = 1u << 20;
}  // namespace idc

// ---- Identify namespace (4096 bytes) --------------------------------------------------------
namespace idns {
inline constexpr size_t kNsze = 0, kNcap = 8, kNuse = 16, kNsfeat = 24, kNlbaf = 25, kFlbas = 26, kNmic = 30,
                        kDlfeat = 33, kNguid = 104, kEui64 = 120, kLbaf = 128;
}  // namespace idns

struct DsmRange {
  uint32_t attributes;
  uint32_t nlb;
  uint64_t slba;
};
static_assert(sizeof(DsmRange) == 16);

// ---- Log pages --------------------------------------------------------------------------
struct ErrorLogEntry {
  uint64_t error_count;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // phase bit included, as in the CQE
  uint16_t param_location;
  uint64_t lba;
  uint32_t nsid;
  uint8_t vs;
  uint8_t trtype;
  uint8_t rsvd[2];
  uint64_t cmd_specific;
  uint8_t rsvd2[24];
};
static_assert(sizeof(ErrorLogEntry) == 64);

namespace smart {
inline constexpr size_t kCriticalWarning = 0, kTemperature = 1, kAvailableSpare = 3, kSpareThreshold = 4,
                        kPercentUsed = 5, kDataUnitsRead = 32, kDataUnitsWritten = 48, kHostReads = 64,
                        kHostWrites = 80, kBusyTime = 96, kPowerCycles = 112, kPowerOnHours = 128,
                        kUnsafeShutdowns = 144, kMediaErrors = 160, kErrorLogEntries = 176;
}  // namespace smart

// ---- NVMe over Fabrics (1.1) ------------------------------------------------------------
// A fabrics command is opcode 7Fh with its type (FCTYPE) in byte 4, where NSID would be.
inline constexpr uint8_t kFabricsOpcode = 0x7f;
inline constexpr uint8_t kFctypePropertySet = 0x00, kFctypeConnect = 0x01, kFctypePropertyGet = 0x04,
                         kFctypeAuthSend = 0x05, kFctypeAuthReceive = 0x06, kFctypeDisconnect = 0x08;
inline constexpr uint8_t fabrics_type(const Sqe& sqe) { return static_cast<uint8_t>(sqe.nsid & 0xff); }

// Connect: CDW10 = RECFMT | QID << 16, CDW11 = SQSIZE (0-based) | CATTR << 16, CDW12 = KATO (ms).
// Its data (1024 bytes) names the host and the subsystem.
namespace connect {
inline constexpr size_t kDataSize = 1024;
inline constexpr size_t kHostid = 0, kCntlid = 16, kSubnqn = 256, kHostnqn = 512;
inline constexpr size_t kNqnField = 256;
inline constexpr uint16_t kNewController = 0xffff;  // CNTLID: "any": a new admin association
// CATTR bit 2: the host does not track SQ Head, so completions need not carry it (and an
// NVMe/TCP controller may end a read with its last C2HData, SUCCESS set, and no CapsuleResp).
inline constexpr uint8_t kCattrDisableSqFlowControl = 1 << 2;
// The SQE bytes the Invalid Parameters status points at (IPO, IATTR 0).
inline constexpr uint16_t kSqeRecfmt = 40, kSqeQid = 42, kSqeSqsize = 44, kSqeKato = 48;
// DW0 of an Invalid Parameters completion: IATTR (0: the SQE, 1: the data) and IPO.
inline constexpr uint32_t invalid_parameter(bool in_data, uint16_t offset) {
  return uint32_t{in_data ? 1u : 0u} | uint32_t{offset} << 16;
}
}  // namespace connect

// Property Get/Set: CDW10 bits 2:0 = size (0: 4 bytes, 1: 8 bytes), CDW11 = offset (the
// register offsets above), CDW12..13 = the value to set. Get returns it in DW0..DW1.
inline constexpr uint32_t kPropertySize8 = 1;
inline constexpr uint16_t kPropertySqeAttrib = 40, kPropertySqeOffset = 44;  // for Invalid Parameters' IPO
inline constexpr uint32_t kVersion13 = 0x00010300;

// ---- Discovery log page (log 70h) ---------------------------------------------------------
namespace discovery {
inline constexpr size_t kHeaderSize = 1024, kEntrySize = 1024;
inline constexpr size_t kGenctr = 0, kNumrec = 8, kRecfmt = 16;  // header
inline constexpr size_t kTrtype = 0, kAdrfam = 1, kSubtype = 2, kTreq = 3, kPortid = 4, kCntlid = 6, kAsqsz = 8,
                        kTrsvcid = 32, kSubnqn = 256, kTraddr = 512, kTsas = 768;  // entry
inline constexpr size_t kTrsvcidSize = 32, kTraddrSize = 256, kSubnqnSize = 256;
inline constexpr uint8_t kTrtypeRdma = 1, kTrtypeFc = 2, kTrtypeTcp = 3;
inline constexpr uint8_t kAdrfamIpv4 = 1, kAdrfamIpv6 = 2;
inline constexpr uint8_t kSubtypeDiscovery = 1, kSubtypeNvm = 2;
inline constexpr uint8_t kTreqSecureChannelNotRequired = 2;
inline constexpr uint16_t kDynamicCntlid = 0xffff;
}  // namespace discovery
inline constexpr const char* kDiscoveryNqn = "nqn.2014-08.org.nvmexpress.discovery";

// Little-endian field access into identify and log buffers (x86 only, like the rest).
template <typename T>
T get(const void* base, size_t off) {
  T v;
  std::memcpy(&v, static_cast<const uint8_t*>(base) + off, sizeof v);
  return v;
}
template <typename T>
void put(void* base, size_t off, T v) {
  std::memcpy(static_cast<uint8_t*>(base) + off, &v, sizeof v);
}
// ASCII fields (serial and model numbers, firmware revision, transport addresses): padded
// with spaces to `n` bytes, not terminated.
inline void put_ascii(void* base, size_t off, size_t n, std::string_view s) {
  auto* p = static_cast<uint8_t*>(base) + off;
  std::memset(p, ' ', n);
  std::memcpy(p, s.data(), std::min(n, s.size()));
}

}  // namespace sluice::nvme::spec
