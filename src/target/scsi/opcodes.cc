// The commands this layer implements, with their CDB usage data, for dispatch-independent
// questions: REPORT SUPPORTED OPERATION CODES (SPC-4 6.35) and the data direction of a CDB.
#include <algorithm>

#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {
namespace {

// A command we implement, with its CDB usage data.
struct OpcodeInfo {
  uint8_t opcode;
  uint8_t service_action;  // meaningful when has_sa
  bool has_sa;
  uint8_t length;
  uint8_t usage[16];  // CDB USAGE DATA: byte 0 is the opcode, then the bits a CDB may set
};

constexpr uint8_t F = 0xff;
// Byte 1 of the block commands: DPO and FUA only, as RDPROTECT/WRPROTECT are refused.
constexpr uint8_t kRw = 0x18;

constexpr OpcodeInfo kOps[] = {
    {op::kTestUnitReady, 0, false, 6, {op::kTestUnitReady, 0, 0, 0, 0, 0}},
    {op::kRequestSense, 0, false, 6, {op::kRequestSense, 0x01, 0, 0, F, 0}},
    {op::kRead6, 0, false, 6, {op::kRead6, 0x1f, F, F, F, 0}},
    {op::kWrite6, 0, false, 6, {op::kWrite6, 0x1f, F, F, F, 0}},
    {op::kInquiry, 0, false, 6, {op::kInquiry, 0x01, F, F, F, 0}},
    {op::kModeSelect6, 0, false, 6, {op::kModeSelect6, 0x11, 0, 0, F, 0}},
    {op::kReserve6, 0, false, 6, {op::kReserve6, 0, 0, 0, 0, 0}},
    {op::kRelease6, 0, false, 6, {op::kRelease6, 0, 0, 0, 0, 0}},
    {op::kModeSense6, 0, false, 6, {op::kModeSense6, 0x08, F, F, F, 0}},
    {op::kStartStopUnit, 0, false, 6, {op::kStartStopUnit, 0x01, 0, 0x0f, 0xf7, 0}},
    {op::kPreventAllow, 0, false, 6, {op::kPreventAllow, 0, 0, 0, 0x03, 0}},
    {op::kReadCapacity10, 0, false, 10, {op::kReadCapacity10, 0, F, F, F, F, 0, 0, 0x01, 0}},
    {op::kRead10, 0, false, 10, {op::kRead10, kRw, F, F, F, F, 0x1f, F, F, 0}},
    {op::kWrite10, 0, false, 10, {op::kWrite10, kRw, F, F, F, F, 0x1f, F, F, 0}},
    {op::kWriteVerify10, 0, false, 10, {op::kWriteVerify10, 0x12, F, F, F, F, 0x1f, F, F, 0}},
    {op::kVerify10, 0, false, 10, {op::kVerify10, 0x16, F, F, F, F, 0x1f, F, F, 0}},
    {op::kPrefetch10, 0, false, 10, {op::kPrefetch10, 0x02, F, F, F, F, 0x1f, F, F, 0}},
    {op::kSyncCache10, 0, false, 10, {op::kSyncCache10, 0x02, F, F, F, F, 0x1f, F, F, 0}},
    {op::kReadDefectData10, 0, false, 10, {op::kReadDefectData10, 0, 0x1f, 0, 0, 0, 0, F, F, 0}},
    {op::kWriteSame10, 0, false, 10, {op::kWriteSame10, 0x08, F, F, F, F, 0x1f, F, F, 0}},
    {op::kUnmap, 0, false, 10, {op::kUnmap, 0, 0, 0, 0, 0, 0x1f, F, F, 0}},
    {op::kModeSelect10, 0, false, 10, {op::kModeSelect10, 0x11, 0, 0, 0, 0, 0, F, F, 0}},
    {op::kReserve10, 0, false, 10, {op::kReserve10, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {op::kRelease10, 0, false, 10, {op::kRelease10, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {op::kModeSense10, 0, false, 10, {op::kModeSense10, 0x18, F, F, 0, 0, 0, F, F, 0}},
    {op::kPersistentReserveIn, 0, true, 10, {op::kPersistentReserveIn, 0, 0, 0, 0, 0, 0, F, F, 0}},
    {op::kPersistentReserveIn, 1, true, 10, {op::kPersistentReserveIn, 1, 0, 0, 0, 0, 0, F, F, 0}},
    {op::kPersistentReserveIn, 2, true, 10, {op::kPersistentReserveIn, 2, 0, 0, 0, 0, 0, F, F, 0}},
    {op::kPersistentReserveIn, 3, true, 10, {op::kPersistentReserveIn, 3, 0, 0, 0, 0, 0, F, F, 0}},
    {op::kPersistentReserveOut, 0, true, 10, {op::kPersistentReserveOut, 0, F, 0, 0, F, F, F, F, 0}},
    {op::kPersistentReserveOut, 1, true, 10, {op::kPersistentReserveOut, 1, F, 0, 0, F, F, F, F, 0}},
    {op::kPersistentReserveOut, 2, true, 10, {op::kPersistentReserveOut, 2, F, 0, 0, F, F, F, F, 0}},
    {op::kPersistentReserveOut, 3, true, 10, {op::kPersistentReserveOut, 3, F, 0, 0, F, F, F, F, 0}},
    {op::kPersistentReserveOut, 4, true, 10, {op::kPersistentReserveOut, 4, F, 0, 0, F, F, F, F, 0}},
    {op::kPersistentReserveOut, 6, true, 10, {op::kPersistentReserveOut, 6, F, 0, 0, F, F, F, F, 0}},
    {op::kRead16, 0, false, 16, {op::kRead16, kRw, F, F, F, F, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kCompareAndWrite, 0, false, 16, {op::kCompareAndWrite, kRw, F, F, F, F, F, F, F, F, 0, 0, 0, F, 0x1f, 0}},
    {op::kWrite16, 0, false, 16, {op::kWrite16, kRw, F, F, F, F, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kOrWrite16, 0, false, 16, {op::kOrWrite16, kRw, F, F, F, F, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kWriteVerify16, 0, false, 16, {op::kWriteVerify16, 0x12, F, F, F, F, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kVerify16, 0, false, 16, {op::kVerify16, 0x16, F, F, F, F, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kPrefetch16, 0, false, 16, {op::kPrefetch16, 0x02, F, F, F, F, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kSyncCache16, 0, false, 16, {op::kSyncCache16, 0x02, F, F, F, F, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kWriteSame16, 0, false, 16, {op::kWriteSame16, 0x09, F, F, F, F, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kServiceActionIn16,
     op::kSaReadCapacity16,
     true,
     16,
     {op::kServiceActionIn16, op::kSaReadCapacity16, 0, 0, 0, 0, 0, 0, 0, 0, F, F, F, F, 0, 0}},
    {op::kServiceActionIn16,
     op::kSaGetLbaStatus,
     true,
     16,
     {op::kServiceActionIn16, op::kSaGetLbaStatus, F, F, F, F, F, F, F, F, F, F, F, F, 0, 0}},
    {op::kReportLuns, 0, false, 12, {op::kReportLuns, 0, F, 0, 0, 0, F, F, F, F, 0, 0}},
    {op::kMaintenanceIn,
     op::kSaReportSupportedOpcodes,
     true,
     12,
     {op::kMaintenanceIn, op::kSaReportSupportedOpcodes, 0x87, F, F, F, F, F, F, F, 0, 0}},
    {op::kRead12, 0, false, 12, {op::kRead12, kRw, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kWrite12, 0, false, 12, {op::kWrite12, kRw, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kWriteVerify12, 0, false, 12, {op::kWriteVerify12, 0x12, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kVerify12, 0, false, 12, {op::kVerify12, 0x16, F, F, F, F, F, F, F, F, 0x1f, 0}},
    {op::kReadDefectData12, 0, false, 12, {op::kReadDefectData12, 0x1f, F, F, F, F, F, F, F, F, 0, 0}},
};

// The command timeouts descriptor (SPC-4 6.35.4): we state no timeouts, only its length.
constexpr size_t kTimeoutsDescriptor = 12;

}  // namespace

void report_supported_opcodes(Task* t) {
  const uint8_t* cdb = t->cdb.data();
  const bool rctd = cdb[2] & 0x80;
  const uint8_t options = cdb[2] & 0x07;
  const uint8_t req_op = cdb[3];
  const uint16_t req_sa = get16(cdb + 4);
  const uint32_t alloc = get32(cdb + 6);
  std::vector<uint8_t> d;
  if (options == 0) {
    d.resize(4);
    for (const OpcodeInfo& o : kOps) {
      uint8_t e[8] = {o.opcode, 0, 0, o.service_action, 0, 0, 0, o.length};
      e[5] = (o.has_sa ? 0x01 : 0) | (rctd ? 0x02 : 0);  // SERVACTV, CTDP
      d.insert(d.end(), e, e + 8);
      if (rctd) {
        uint8_t c[kTimeoutsDescriptor] = {0, 0x0a};
        d.insert(d.end(), c, c + sizeof(c));
      }
    }
    put32(d.data(), static_cast<uint32_t>(d.size() - 4));
    return complete_data_in(t, d.data(), d.size(), alloc);
  }
  if (options > 3) return complete_check(t, invalid_cdb_field(2, 2));
  // 1: by opcode alone; 2: opcode and service action; 3: either, as the command has.
  const OpcodeInfo* found = nullptr;
  bool has_sa_forms = false;
  for (const OpcodeInfo& o : kOps) {
    if (o.opcode != req_op) continue;
    has_sa_forms = o.has_sa;
    if (!o.has_sa || o.service_action == req_sa) found = &o;
  }
  if (options == 1 && has_sa_forms) return complete_check(t, invalid_cdb_field(2, 2));
  if (options == 2 && found != nullptr && !has_sa_forms) return complete_check(t, invalid_cdb_field(2, 2));
  d.assign(4, 0);
  if (found == nullptr) {
    d[1] = 0x01;  // SUPPORT: not supported
  } else {
    d[1] = 0x03 | (rctd ? 0x80 : 0);  // SUPPORT: as the standard says; CTDP
    put16(d.data() + 2, found->length);
    d.insert(d.end(), found->usage, found->usage + found->length);
    if (rctd) {
      uint8_t c[kTimeoutsDescriptor] = {0, 0x0a};
      d.insert(d.end(), c, c + sizeof(c));
    }
  }
  complete_data_in(t, d.data(), d.size(), alloc);
}

DataDirection data_direction(const uint8_t* cdb) {
  switch (cdb[0]) {
    case op::kRead6:
    case op::kRead10:
    case op::kRead12:
    case op::kRead16:
    case op::kInquiry:
    case op::kRequestSense:
    case op::kModeSense6:
    case op::kModeSense10:
    case op::kReadCapacity10:
    case op::kServiceActionIn16:
    case op::kReportLuns:
    case op::kMaintenanceIn:
    case op::kReadDefectData10:
    case op::kReadDefectData12:
    case op::kPersistentReserveIn: return DataDirection::read;
    case op::kWrite6:
    case op::kWrite10:
    case op::kWrite12:
    case op::kWrite16:
    case op::kWriteVerify10:
    case op::kWriteVerify12:
    case op::kWriteVerify16:
    case op::kModeSelect6:
    case op::kModeSelect10:
    case op::kUnmap:
    case op::kCompareAndWrite:
    case op::kOrWrite16:
    case op::kWriteSame10:
    case op::kPersistentReserveOut: return DataDirection::write;
    case op::kWriteSame16: return cdb[1] & 0x01 ? DataDirection::none : DataDirection::write;  // NDOB
    case op::kVerify10:
    case op::kVerify12:
    case op::kVerify16: return cdb[1] & 0x06 ? DataDirection::write : DataDirection::none;  // BYTCHK
    default: return DataDirection::none;
  }
}

}  // namespace sluice::scsi
