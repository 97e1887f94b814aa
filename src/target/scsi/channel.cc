// Channel: a thread's access to a Device, and the dispatch of a task: LUN lookup, unit
// attentions, reservations, then the command's handler.
#include <unordered_map>

#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {

Channel::Channel(Device& device) : device_(device) { device_.shared().channels.fetch_add(1); }

namespace {

// The thread's LunChannels, shared by its Channels: COMPARE AND WRITE then excludes the writes
// of every connection this thread serves, not only its own.
thread_local std::unordered_map<const Lun*, std::unique_ptr<LunChannel>> t_lun_channels;

}  // namespace

Channel::~Channel() {
  for (LunChannel* lc : luns_) {
    if (lc == nullptr || --lc->refs != 0) continue;
    (void)lc->lun->desc->put_channel(lc->ch);
    t_lun_channels.erase(lc->lun);
  }
  device_.shared().channels.fetch_sub(1);
}

LunChannel* Channel::lun_channel(Lun& lun, Status* error) {
  const size_t i = lun.index;
  if (luns_.size() <= i) luns_.resize(device_.shared().luns.size());
  if (luns_[i] != nullptr) return luns_[i];
  std::unique_ptr<LunChannel>& lc = t_lun_channels[&lun];
  if (!lc) {
    auto ch = lun.desc->get_channel();
    if (!ch.ok()) {
      t_lun_channels.erase(&lun);
      *error = ch.status();
      return nullptr;
    }
    lc = std::make_unique<LunChannel>();
    lc->lun = &lun;
    lc->ch = ch.value();
  }
  ++lc->refs;
  luns_[i] = lc.get();
  return luns_[i];
}

namespace {

// Commands that run whatever a unit attention or a reservation says (SPC-4 5.14, SPC-2 5.5.1).
bool ignores_attention(uint8_t opcode) {
  return opcode == op::kInquiry || opcode == op::kReportLuns || opcode == op::kRequestSense;
}

// Commands that touch the medium and so need a started unit.
bool medium_access(uint8_t opcode) {
  switch (opcode) {
    case op::kRead6:
    case op::kRead10:
    case op::kRead12:
    case op::kRead16:
    case op::kWrite6:
    case op::kWrite10:
    case op::kWrite12:
    case op::kWrite16:
    case op::kWriteVerify10:
    case op::kWriteVerify12:
    case op::kWriteVerify16:
    case op::kVerify10:
    case op::kVerify12:
    case op::kVerify16:
    case op::kSyncCache10:
    case op::kSyncCache16:
    case op::kPrefetch10:
    case op::kPrefetch16:
    case op::kWriteSame10:
    case op::kWriteSame16:
    case op::kUnmap:
    case op::kCompareAndWrite:
    case op::kOrWrite16: return true;
    default: return false;
  }
}

void dispatch(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  switch (cdb[0]) {
    case op::kInquiry: return inquiry(t, &lun);
    case op::kTestUnitReady: return complete_good(t);
    case op::kRequestSense: return request_sense(t);
    case op::kReportLuns: return report_luns(t);
    case op::kModeSense6:
    case op::kModeSense10: return mode_sense(t, lun);
    case op::kModeSelect6:
    case op::kModeSelect10: return mode_select(t, lun);
    case op::kReadCapacity10: return read_capacity(t, lun);
    case op::kServiceActionIn16:
      if ((cdb[1] & 0x1f) == op::kSaReadCapacity16) return read_capacity(t, lun);
      if ((cdb[1] & 0x1f) == op::kSaGetLbaStatus) return get_lba_status(t, lun);
      return complete_check(t, invalid_cdb_field(1, 4));
    case op::kMaintenanceIn:
      if ((cdb[1] & 0x1f) == op::kSaReportSupportedOpcodes) return report_supported_opcodes(t);
      return complete_check(t, invalid_cdb_field(1, 4));
    case op::kRead6:
    case op::kRead10:
    case op::kRead12:
    case op::kRead16:
    case op::kWrite6:
    case op::kWrite10:
    case op::kWrite12:
    case op::kWrite16:
    case op::kWriteVerify10:
    case op::kWriteVerify12:
    case op::kWriteVerify16:
    case op::kVerify10:
    case op::kVerify12:
    case op::kVerify16:
    case op::kSyncCache10:
    case op::kSyncCache16:
    case op::kPrefetch10:
    case op::kPrefetch16: return block_io(t, lun);
    case op::kReadDefectData10:
    case op::kReadDefectData12: return read_defect_data(t);
    case op::kUnmap: return unmap(t, lun);
    case op::kWriteSame10:
    case op::kWriteSame16: return write_same(t, lun);
    case op::kCompareAndWrite: return compare_and_write(t, lun);
    case op::kOrWrite16: return or_write(t, lun);
    case op::kStartStopUnit: return start_stop_unit(t, lun);
    case op::kPreventAllow: return prevent_allow(t, lun);
    case op::kPersistentReserveIn: return persistent_reserve_in(t, lun);
    case op::kPersistentReserveOut: return persistent_reserve_out(t, lun);
    case op::kReserve6:
    case op::kReserve10:
    case op::kRelease6:
    case op::kRelease10: return reserve_release(t, lun);
    default: return complete_check(t, illegal(asc::kInvalidOpcode));
  }
}

}  // namespace

void Channel::execute(Task* t) {
  t->status = kStatusGood;
  t->sense_length = 0;
  t->transferred = 0;
  t->residual_kind = Residual::none;
  t->residual = 0;
  t->state = {};
  t->state.channel = this;
  ++in_flight_;
  const uint8_t opcode = t->cdb[0];
  Device::Shared& sh = device_.shared();
  // A CDB shorter than its opcode's group says would be read past its end; NACA asks for
  // ACA handling, which we do not offer (SAM-5 5.9).
  const size_t len = cdb_length(opcode);
  if (len != 0 && t->cdb_length != 0 && t->cdb_length < len) return complete_check(t, invalid_cdb_field(0));
  if (len != 0 && (t->cdb[len - 1] & 0x04)) return complete_check(t, invalid_cdb_field(static_cast<int>(len - 1), 2));
  Lun* lun = t->lun <= kMaxLun ? sh.find(t->lun) : nullptr;
  if (lun == nullptr) {
    switch (opcode) {
      case op::kInquiry: return inquiry(t, nullptr);
      case op::kReportLuns: return report_luns(t);
      case op::kRequestSense: return request_sense(t);
      default: return complete_check(t, illegal(asc::kLunNotSupported));
    }
  }
  Status err;
  t->state.lc = lun_channel(*lun, &err);
  if (t->state.lc == nullptr) return complete_check(t, sense_of(err.code(), false));
  // A capacity change reaches every nexus once, as a unit attention (SBC-3 4.10).
  const uint64_t blocks = lun->num_blocks();
  if (lun->known_blocks.load(std::memory_order_relaxed) != blocks && lun->known_blocks.exchange(blocks) != blocks)
    sh.raise(lun->id, asc::kCapacityDataChanged, 0);
  if (!ignores_attention(opcode)) {
    uint16_t code = 0;
    if (sh.take_attention(t->nexus, lun->id, &code))
      return complete_check(t, {.key = sense_key::kUnitAttention, .asc = code});
  }
  if (lun->reserved_by.load(std::memory_order_relaxed) != 0 && !reservation_allows(t, *lun))
    return complete_status(t, kStatusReservationConflict);
  if (lun->pr_type.load(std::memory_order_acquire) != 0 && !persistent_reservation_allows(t, *lun))
    return complete_status(t, kStatusReservationConflict);
  if (lun->stopped.load(std::memory_order_relaxed) && medium_access(opcode))
    return complete_check(t, {.key = sense_key::kNotReady, .asc = asc::kNotReadyInitCommandRequired});
  dispatch(t, *lun);
}

}  // namespace sluice::scsi
