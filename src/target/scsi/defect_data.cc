// READ DEFECT DATA 10/12 (SBC-3 5.19, 5.20): a bdev has no grown or primary defect list to
// show, so the answer is the header of an empty one, in the format asked for, with PLISTV and
// GLISTV saying that each list requested is there (and empty).
#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {

void read_defect_data(Task* t) {
  const uint8_t* cdb = t->cdb.data();
  const bool ten = cdb[0] == op::kReadDefectData10;
  const uint8_t request = ten ? cdb[2] : cdb[1];  // REQ_PLIST (4), REQ_GLIST (3), DEFECT LIST FORMAT (2:0)
  uint8_t header[8] = {};
  header[1] = request & 0x1f;
  complete_data_in(t, header, ten ? 4 : 8, allocation_length(cdb));
}

}  // namespace sluice::scsi
