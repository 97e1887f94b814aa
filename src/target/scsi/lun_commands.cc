// REPORT LUNS, REQUEST SENSE, START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL (SPC-4 6.33,
// 6.39, SBC-3 5.25, 5.19). TEST UNIT READY is GOOD once dispatch has let it through.
#include <algorithm>

#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {

void report_luns(Task* t) {
  const uint8_t* cdb = t->cdb.data();
  const uint8_t select = cdb[2];
  const uint32_t alloc = get32(cdb + 6);
  if (select > 0x02) return complete_check(t, invalid_cdb_field(2));
  if (alloc < 16) return complete_check(t, invalid_cdb_field(6));  // SPC-4 6.33: at least 16
  const auto& luns = shared(t).luns;
  std::vector<uint8_t> d(8);
  // SELECT REPORT 01h asks for well-known LUNs only, and we have none.
  if (select != 0x01) {
    for (const auto& l : luns) {
      const auto w = lun_to_wire(l->id);
      d.insert(d.end(), w.begin(), w.end());
    }
  }
  put32(d.data(), static_cast<uint32_t>(d.size() - 8));
  complete_data_in(t, d.data(), d.size(), alloc);
}

void request_sense(Task* t) {
  const uint8_t* cdb = t->cdb.data();
  const bool desc = cdb[1] & 0x01;
  Device::Shared& sh = shared(t);
  Lun* lun = t->lun <= kMaxLun ? sh.find(t->lun) : nullptr;
  SenseData s;
  uint16_t code = 0;
  if (lun == nullptr) {
    s = illegal(asc::kLunNotSupported);
  } else if (sh.take_attention(t->nexus, lun->id, &code)) {
    s = {.key = sense_key::kUnitAttention, .asc = code};  // reported here, and so cleared
  } else if (lun->stopped.load()) {
    s = {.key = sense_key::kNotReady, .asc = asc::kNotReadyInitCommandRequired};
  }
  uint8_t d[64];
  const size_t n = build_sense(s, desc, d);
  complete_data_in(t, d, n, cdb[4]);
}

namespace {

void flush_done(void* arg, Errc e) {
  auto* t = static_cast<Task*>(arg);
  if (e != Errc::ok) return complete_check(t, sense_of(e, true));
  t->state.lc->lun->stopped = true;
  complete_good(t);
}

Status flush_submit(Task* t) { return t->state.lc->lun->desc->flush(t->state.lc->ch, flush_done, t); }

}  // namespace

void start_stop_unit(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const uint8_t power = cdb[4] >> 4;
  const bool no_flush = cdb[4] & 0x04;
  const bool loej = cdb[4] & 0x02;
  const bool start = cdb[4] & 0x01;
  // Only the START bit's own condition: we have no power states to move between.
  if (power != 0) return complete_check(t, invalid_cdb_field(4, 7));
  if (start) {
    lun.stopped = false;
    return complete_good(t);
  }
  if (loej && lun.prevent.load() != 0) return complete_check(t, illegal(asc::kMediumRemovalPrevented));
  // Stopping makes what is cached durable first, unless told not to.
  if (no_flush || !lun.geometry().supports(bdev::IoType::flush)) {
    lun.stopped = true;
    return complete_good(t);
  }
  submit_with_retry(t, flush_submit, true);
}

void prevent_allow(Task* t, Lun& lun) {
  const uint8_t prevent = t->cdb[4] & 0x03;
  if (prevent > 1) return complete_check(t, invalid_cdb_field(4, 1));  // the medium changer forms
  Device::Shared& sh = shared(t);
  {
    // Never complete under the mutex: done() may submit the next task, which takes it.
    std::lock_guard lock(sh.mu);
    auto it = sh.nexuses.find(t->nexus);
    if (it != sh.nexuses.end()) {  // an anonymous nexus has nothing to hold
      auto& v = it->second.prevented;
      const auto held = std::find(v.begin(), v.end(), lun.id);
      if (prevent && held == v.end()) {
        v.push_back(lun.id);
        lun.prevent.fetch_add(1);
      } else if (!prevent && held != v.end()) {
        v.erase(held);
        lun.prevent.fetch_sub(1);
      }
    }
  }
  complete_good(t);
}

}  // namespace sluice::scsi
