// CDB field decoding (SPC-4 4.2, SBC-3 5).
#include "target/scsi/cdb.h"

namespace sluice::scsi {

size_t cdb_length(uint8_t opcode) {
  switch (opcode >> 5) {
    case 0: return 6;
    case 1:
    case 2: return 10;
    case 4: return 16;
    case 5: return 12;
    default: return 0;
  }
}

BlockCdb decode_block(const uint8_t* cdb) {
  BlockCdb b;
  switch (cdb_length(cdb[0])) {
    case 6:
      // READ(6)/WRITE(6): 21-bit LBA, and a TRANSFER LENGTH of 0 means 256 blocks.
      b.lba = get24(cdb + 1) & 0x1fffff;
      b.blocks = cdb[4] == 0 ? 256 : cdb[4];
      break;
    case 10:
      b.lba = get32(cdb + 2);
      b.blocks = get16(cdb + 7);
      b.flags = cdb[1];
      break;
    case 12:
      b.lba = get32(cdb + 2);
      b.blocks = get32(cdb + 6);
      b.flags = cdb[1];
      break;
    case 16:
      b.lba = get64(cdb + 2);
      b.blocks = cdb[0] == op::kCompareAndWrite ? cdb[13] : get32(cdb + 10);
      b.flags = cdb[1];
      break;
    default: break;
  }
  return b;
}

uint32_t allocation_length(const uint8_t* cdb) {
  switch (cdb[0]) {
    case op::kInquiry: return get16(cdb + 3);
    case op::kRequestSense:
    case op::kModeSense6: return cdb[4];
    case op::kModeSense10: return get16(cdb + 7);
    case op::kReadCapacity10: return 8;
    case op::kServiceActionIn16: return get32(cdb + 10);
    case op::kReportLuns:
    case op::kMaintenanceIn: return get32(cdb + 6);
    case op::kPersistentReserveIn:
    case op::kReadDefectData10: return get16(cdb + 7);
    case op::kReadDefectData12: return get32(cdb + 6);
    default: return 0;
  }
}

}  // namespace sluice::scsi
