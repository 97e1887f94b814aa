// CDB decoding: big-endian fields, CDB lengths by opcode group, the opcodes this layer
// knows, and the LBA/length/flags of the block commands.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::scsi {

inline uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t get24(const uint8_t* p) { return uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2]; }
inline uint32_t get32(const uint8_t* p) { return uint32_t{get16(p)} << 16 | get16(p + 2); }
inline uint64_t get64(const uint8_t* p) { return uint64_t{get32(p)} << 32 | get32(p + 4); }
inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
inline void put64(uint8_t* p, uint64_t v) {
  put32(p, static_cast<uint32_t>(v >> 32));
  put32(p + 4, static_cast<uint32_t>(v));
}

namespace op {
inline constexpr uint8_t kTestUnitReady = 0x00;
inline constexpr uint8_t kRequestSense = 0x03;
inline constexpr uint8_t kRead6 = 0x08;
inline constexpr uint8_t kWrite6 = 0x0a;
inline constexpr uint8_t kInquiry = 0x12;
inline constexpr uint8_t kModeSelect6 = 0x15;
inline constexpr uint8_t kReserve6 = 0x16;
inline constexpr uint8_t kRelease6 = 0x17;
inline constexpr uint8_t kModeSense6 = 0x1a;
inline constexpr uint8_t kStartStopUnit = 0x1b;
inline constexpr uint8_t kPreventAllow = 0x1e;
inline constexpr uint8_t kReadCapacity10 = 0x25;
inline constexpr uint8_t kRead10 = 0x28;
inline constexpr uint8_t kWrite10 = 0x2a;
inline constexpr uint8_t kWriteVerify10 = 0x2e;
inline constexpr uint8_t kVerify10 = 0x2f;
inline constexpr uint8_t kPrefetch10 = 0x34;
inline constexpr uint8_t kSyncCache10 = 0x35;
inline constexpr uint8_t kReadDefectData10 = 0x37;
inline constexpr uint8_t kWriteSame10 = 0x41;
inline constexpr uint8_t kUnmap = 0x42;
inline constexpr uint8_t kModeSelect10 = 0x55;
inline constexpr uint8_t kReserve10 = 0x56;
inline constexpr uint8_t kRelease10 = 0x57;
inline constexpr uint8_t kModeSense10 = 0x5a;
inline constexpr uint8_t kPersistentReserveIn = 0x5e;
inline constexpr uint8_t kPersistentReserveOut = 0x5f;
inline constexpr uint8_t kRead16 = 0x88;
inline constexpr uint8_t kCompareAndWrite = 0x89;
inline constexpr uint8_t kWrite16 = 0x8a;
inline constexpr uint8_t kOrWrite16 = 0x8b;
inline constexpr uint8_t kWriteVerify16 = 0x8e;
inline constexpr uint8_t kVerify16 = 0x8f;
inline constexpr uint8_t kPrefetch16 = 0x90;
inline constexpr uint8_t kSyncCache16 = 0x91;
inline constexpr uint8_t kWriteSame16 = 0x93;
inline constexpr uint8_t kServiceActionIn16 = 0x9e;
inline constexpr uint8_t kReportLuns = 0xa0;
inline constexpr uint8_t kMaintenanceIn = 0xa3;
inline constexpr uint8_t kRead12 = 0xa8;
inline constexpr uint8_t kWrite12 = 0xaa;
inline constexpr uint8_t kWriteVerify12 = 0xae;
inline constexpr uint8_t kVerify12 = 0xaf;
inline constexpr uint8_t kReadDefectData12 = 0xb7;

// Service actions.
inline constexpr uint8_t kSaReadCapacity16 = 0x10;
inline constexpr uint8_t kSaGetLbaStatus = 0x12;
inline constexpr uint8_t kSaReportSupportedOpcodes = 0x0c;
}  // namespace op

// The CDB length an opcode's group implies; 0 for the groups we do not decode (vendor
// specific, variable length).
size_t cdb_length(uint8_t opcode);

// The addressing fields of a block command (READ, WRITE, VERIFY, WRITE AND VERIFY, WRITE SAME,
// SYNCHRONIZE CACHE, PRE-FETCH, COMPARE AND WRITE, ORWRITE, in every size).
struct BlockCdb {
  uint64_t lba = 0;
  uint32_t blocks = 0;
  uint8_t flags = 0;  // byte 1: RDPROTECT/WRPROTECT/VRPROTECT (7:5), DPO (4), FUA (3), BYTCHK (2:1)
  bool protect() const { return (flags >> 5) != 0; }
  bool fua() const { return (flags & 0x08) != 0; }
};
BlockCdb decode_block(const uint8_t* cdb);

// The ALLOCATION LENGTH field of the data-in commands we answer from memory (0: none known).
uint32_t allocation_length(const uint8_t* cdb);

}  // namespace sluice::scsi
