// SPC-2 reservations: RESERVE and RELEASE, 6 and 10 (SPC-2 7.21-7.24). One nexus holds a
// LUN; the others get RESERVATION CONFLICT for all but the commands SPC-2 5.5.1 lets through.
// The holder loses it by RELEASE, a reset, or the end of its nexus.
#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {

bool reservation_allows(const Task* t, const Lun& lun) {
  if (lun.reserved_by.load() == t->nexus) return true;
  switch (t->cdb[0]) {
    case op::kInquiry:
    case op::kReportLuns:
    case op::kRequestSense:
    case op::kRelease6:
    case op::kRelease10: return true;
    case op::kPreventAllow: return (t->cdb[4] & 0x03) == 0;
    case op::kMaintenanceIn: return (t->cdb[1] & 0x1f) == op::kSaReportSupportedOpcodes;
    default: return false;
  }
}

void reserve_release(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const bool reserve = cdb[0] == op::kReserve6 || cdb[0] == op::kReserve10;
  // Third-party and extent reservations are gone from SPC-3; we never had them.
  if (cdb[0] == op::kReserve10 || cdb[0] == op::kRelease10) {
    if (cdb[1] & 0x10) return complete_check(t, invalid_cdb_field(1, 4));  // 3RDPTY
  } else if (cdb[1] & 0x01) {
    return complete_check(t, invalid_cdb_field(1, 0));  // EXTENT
  }
  bool registrations = false;
  {
    Device::Shared& sh = shared(t);
    std::lock_guard lock(sh.mu);
    auto p = sh.prs.find(lun.id);
    registrations = p != sh.prs.end() && !p->second.registrants.empty();
  }
  // SPC-4 5.13.3: with persistent reservation registrations, RESERVE and RELEASE conflict.
  if (registrations) return complete_status(t, kStatusReservationConflict);
  if (!reserve) {
    // Releasing what another nexus holds, or nothing, is no error and changes nothing.
    uint64_t mine = t->nexus;
    if (mine != 0) lun.reserved_by.compare_exchange_strong(mine, 0);
    return complete_good(t);
  }
  // An anonymous nexus cannot be told apart from another, so it cannot hold a reservation.
  if (t->nexus == 0) return complete_status(t, kStatusReservationConflict);
  uint64_t holder = 0;
  if (lun.reserved_by.compare_exchange_strong(holder, t->nexus) || holder == t->nexus) return complete_good(t);
  complete_status(t, kStatusReservationConflict);
}

}  // namespace sluice::scsi
