// PERSISTENT RESERVE IN and OUT (SPC-4 5.13, 6.15, 6.16): registrations by I_T nexus (named
// by initiator port and relative target port, so they outlive a session), the six reservation
// types, and the access each leaves to the other nexuses (SPC-4 table 63, SBC-3 table 13).
//
// Nothing persists through a power loss (APTPL and PTPL_C are 0), ALL_TG_PT and SPEC_I_PT are
// refused, and REGISTER AND MOVE, REPLACE LOST RESERVATION and PREEMPT AND ABORT are not
// implemented: this layer keeps no task set it could abort.
#include <algorithm>

#include "target/scsi/scsi_impl.h"

namespace sluice::scsi {
namespace {

constexpr uint8_t kSaRegister = 0;
constexpr uint8_t kSaReserve = 1;
constexpr uint8_t kSaRelease = 2;
constexpr uint8_t kSaClear = 3;
constexpr uint8_t kSaPreempt = 4;
constexpr uint8_t kSaRegisterIgnore = 6;
constexpr size_t kParameterListLength = 24;

bool valid_type(uint8_t t) { return t == 1 || t == 3 || t == 5 || t == 6 || t == 7 || t == 8; }
bool all_registrants(uint8_t t) { return t == 7 || t == 8; }
// Registrants only and all registrants: every registrant may access the LUN as the holder does.
bool registrants_access(uint8_t t) { return t >= 5; }
bool exclusive_access(uint8_t t) { return t == 3 || t == 6 || t == 8; }

enum class Access { always, read, write };

Access access_of(const uint8_t* cdb) {
  switch (cdb[0]) {
    case op::kInquiry:
    case op::kReportLuns:
    case op::kRequestSense:
    case op::kMaintenanceIn:
    case op::kPersistentReserveIn:
    case op::kPersistentReserveOut:  // its own checks: an unregistered nexus may only register
    case op::kReadCapacity10:
    case op::kTestUnitReady:
    case op::kRelease6:
    case op::kRelease10: return Access::always;
    case op::kServiceActionIn16: return (cdb[1] & 0x1f) == op::kSaReadCapacity16 ? Access::always : Access::read;
    case op::kPreventAllow: return (cdb[4] & 0x03) == 0 ? Access::always : Access::write;
    case op::kRead6:
    case op::kRead10:
    case op::kRead12:
    case op::kRead16:
    case op::kVerify10:
    case op::kVerify12:
    case op::kVerify16:
    case op::kPrefetch10:
    case op::kPrefetch16:
    case op::kReadDefectData10:
    case op::kReadDefectData12:
    case op::kModeSense6:
    case op::kModeSense10: return Access::read;
    default: return Access::write;
  }
}

int find_registrant(const PersistentReservation& pr, const Nexus& n) {
  for (size_t i = 0; i < pr.registrants.size(); ++i)
    if (pr.registrants[i].initiator_port == n.initiator_port &&
        pr.registrants[i].relative_target_port == n.relative_target_port)
      return static_cast<int>(i);
  return -1;
}

bool holds(const PersistentReservation& pr, int reg) {
  if (pr.type == 0 || reg < 0) return false;
  return all_registrants(pr.type) || pr.holder == static_cast<size_t>(reg);
}

// Removes the registrants `drop` picks and returns them. The reservation follows its holder:
// it goes with it, and an all-registrants one with the last registrant.
template <typename Pred>
std::vector<Registrant> remove_registrants(PersistentReservation& pr, Pred drop) {
  std::vector<Registrant> kept, gone;
  bool holder_gone = false;
  size_t holder = 0;
  for (size_t i = 0; i < pr.registrants.size(); ++i) {
    if (drop(pr.registrants[i], i)) {
      if (i == pr.holder) holder_gone = true;
      gone.push_back(std::move(pr.registrants[i]));
    } else {
      if (i == pr.holder) holder = kept.size();
      kept.push_back(std::move(pr.registrants[i]));
    }
  }
  pr.registrants = std::move(kept);
  pr.holder = holder;
  if (pr.type != 0 && (all_registrants(pr.type) ? pr.registrants.empty() : holder_gone)) pr.type = 0;
  return gone;
}

// The registrants other than `me` learn of a change to the reservation.
void tell_others(Device::Shared& sh, const PersistentReservation& pr, int me, uint64_t lun, uint16_t code) {
  for (size_t i = 0; i < pr.registrants.size(); ++i)
    if (static_cast<int>(i) != me) sh.raise_registrant_locked(pr.registrants[i], lun, code);
}

// iSCSI TransportID (SPC-4 7.6.4.6): format 01b when the port name carries ",i,0x<ISID>".
void transport_id(const std::string& port, std::vector<uint8_t>& d) {
  const size_t len = std::max<size_t>((port.size() + 1 + 3) & ~size_t{3}, 20);
  const size_t at = d.size();
  d.resize(at + 4 + len);
  d[at] = (port.find(",i,0x") != std::string::npos ? 0x40 : 0x00) | 0x05;
  put16(&d[at + 2], static_cast<uint16_t>(len));
  std::memcpy(&d[at + 4], port.data(), port.size());
}

}  // namespace

bool persistent_reservation_allows(const Task* t, const Lun& lun) {
  const Access a = access_of(t->cdb.data());
  if (a == Access::always) return true;
  Device::Shared& sh = shared(t);
  std::lock_guard lock(sh.mu);
  auto p = sh.prs.find(lun.id);
  if (p == sh.prs.end() || p->second.type == 0) return true;
  const PersistentReservation& pr = p->second;
  auto n = sh.nexuses.find(t->nexus);
  const int reg = n == sh.nexuses.end() ? -1 : find_registrant(pr, n->second);
  if (reg >= 0 && (registrants_access(pr.type) || holds(pr, reg))) return true;
  return a == Access::read && !exclusive_access(pr.type);
}

void persistent_reserve_in(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const uint8_t sa = cdb[1] & 0x1f;
  std::vector<uint8_t> d(8);
  {
    Device::Shared& sh = shared(t);
    std::lock_guard lock(sh.mu);
    const PersistentReservation& pr = sh.prs[lun.id];
    put32(d.data(), pr.generation);
    switch (sa) {
      case 0:  // READ KEYS
        for (const Registrant& r : pr.registrants) {
          d.resize(d.size() + 8);
          put64(&d[d.size() - 8], r.key);
        }
        break;
      case 1:  // READ RESERVATION
        if (pr.type != 0) {
          d.resize(24);
          // An all-registrants reservation has no one holder: its key reads as zero.
          put64(&d[8], all_registrants(pr.type) ? 0 : pr.registrants[pr.holder].key);
          d[21] = pr.type;  // scope 0: the logical unit
        }
        break;
      case 2:  // REPORT CAPABILITIES
        put16(d.data(), 8);
        d[2] = 0x10;                              // CRH: RESERVE/RELEASE conflict with registrations
        d[3] = 0x80;                              // TMV: the type mask below is valid
        d[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;  // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
        d[5] = 0x01;                              // EX_AC_AR
        return complete_data_in(t, d.data(), d.size(), get16(cdb + 7));
      case 3:  // READ FULL STATUS
        for (size_t i = 0; i < pr.registrants.size(); ++i) {
          const Registrant& r = pr.registrants[i];
          const size_t at = d.size();
          d.resize(at + 24);
          put64(&d[at], r.key);
          if (holds(pr, static_cast<int>(i))) {
            d[at + 12] = 0x01;  // R_HOLDER
            d[at + 13] = pr.type;
          }
          put16(&d[at + 18], r.relative_target_port);
          transport_id(r.initiator_port, d);
          put32(&d[at + 20], static_cast<uint32_t>(d.size() - at - 24));
        }
        break;
      default: return complete_check(t, invalid_cdb_field(1, 4));
    }
  }
  put32(&d[4], static_cast<uint32_t>(d.size() - 8));
  complete_data_in(t, d.data(), d.size(), get16(cdb + 7));
}

namespace {

// The outcome of a PERSISTENT RESERVE OUT, decided under the mutex and reported after it.
struct Outcome {
  uint8_t status = kStatusGood;
  SenseData sense;
  static Outcome conflict() { return {kStatusReservationConflict, {}}; }
  static Outcome check(const SenseData& s) { return {kStatusCheckCondition, s}; }
};

Outcome reserve_out(Device::Shared& sh, Lun& lun, uint64_t nexus, uint8_t sa, uint8_t type, uint64_t key,
                    uint64_t sa_key) {
  auto n = sh.nexuses.find(nexus);
  // An anonymous nexus has no name to register under.
  if (n == sh.nexuses.end()) return Outcome::conflict();
  PersistentReservation& pr = sh.prs[lun.id];
  const int me = find_registrant(pr, n->second);
  const bool registered = me >= 0 && pr.registrants[me].key == key;
  switch (sa) {
    case kSaRegister:
    case kSaRegisterIgnore:
      if (me < 0) {
        if (sa == kSaRegister && key != 0) return Outcome::conflict();
        if (sa_key == 0) return {};
        pr.registrants.push_back({n->second.initiator_port, n->second.relative_target_port, sa_key});
        ++pr.generation;
        return {};
      }
      if (sa == kSaRegister && !registered) return Outcome::conflict();
      if (sa_key != 0) {
        pr.registrants[me].key = sa_key;
        ++pr.generation;
        return {};
      }
      {
        // Unregistering: a holder's reservation goes with it, and the other registrants of a
        // registrants-only reservation are told it was released.
        const uint8_t had = pr.type;
        remove_registrants(pr, [&](const Registrant&, size_t i) { return static_cast<int>(i) == me; });
        if (had != 0 && pr.type == 0 && registrants_access(had))
          tell_others(sh, pr, -1, lun.id, asc::kReservationsReleased);
        ++pr.generation;
        return {};
      }
    case kSaReserve:
      if (!registered) return Outcome::conflict();
      if (pr.type == 0) {
        pr.type = type;
        pr.holder = static_cast<size_t>(me);
        return {};
      }
      return holds(pr, me) && pr.type == type ? Outcome{} : Outcome::conflict();
    case kSaRelease: {
      if (!registered) return Outcome::conflict();
      if (!holds(pr, me)) return {};  // nothing of this nexus's to release
      if (pr.type != type) return Outcome::check(illegal(asc::kInvalidReleaseOfPersistentReservation));
      const uint8_t old = pr.type;
      pr.type = 0;
      if (registrants_access(old)) tell_others(sh, pr, me, lun.id, asc::kReservationsReleased);
      return {};
    }
    case kSaClear:
      if (!registered) return Outcome::conflict();
      tell_others(sh, pr, me, lun.id, asc::kReservationsPreempted);
      pr.registrants.clear();
      pr.type = 0;
      ++pr.generation;
      return {};
    default: {  // PREEMPT
      if (!registered) return Outcome::conflict();
      const std::string my_port = pr.registrants[me].initiator_port;
      const uint16_t my_rtp = pr.registrants[me].relative_target_port;
      auto is_me = [&](const Registrant& r) { return r.initiator_port == my_port && r.relative_target_port == my_rtp; };
      std::vector<Registrant> gone;
      const bool takes_over =
          pr.type != 0 && (all_registrants(pr.type) ? sa_key == 0 : pr.registrants[pr.holder].key == sa_key);
      if (takes_over) {
        // The reservation becomes this nexus's, of the new type; the preempted registrations
        // go (an all-registrants reservation: every other one).
        const bool all = all_registrants(pr.type);
        pr.type = 0;
        gone =
            remove_registrants(pr, [&](const Registrant& r, size_t) { return !is_me(r) && (all || r.key == sa_key); });
        const int self = find_registrant(pr, n->second);
        pr.type = type;
        pr.holder = static_cast<size_t>(self);
      } else {
        if (sa_key == 0) return Outcome::check(invalid_param_field(8));
        gone = remove_registrants(pr, [&](const Registrant& r, size_t) { return r.key == sa_key; });
        if (gone.empty()) return Outcome::conflict();
      }
      for (const Registrant& r : gone) sh.raise_registrant_locked(r, lun.id, asc::kRegistrationsPreempted);
      ++pr.generation;
      return {};
    }
  }
}

}  // namespace

void persistent_reserve_out(Task* t, Lun& lun) {
  const uint8_t* cdb = t->cdb.data();
  const uint8_t sa = cdb[1] & 0x1f;
  const uint8_t scope = cdb[2] >> 4;
  const uint8_t type = cdb[2] & 0x0f;
  const uint32_t len = get32(cdb + 5);
  if (sa > kSaRegisterIgnore || sa == 5) return complete_check(t, invalid_cdb_field(1, 4));
  if (len != kParameterListLength) return complete_check(t, illegal(asc::kParameterListLengthError));
  uint8_t p[kParameterListLength];
  if (!copy_from_iov(t, 0, p, sizeof(p))) return complete_check(t, illegal(asc::kParameterListLengthError));
  t->transferred = kParameterListLength;
  if (p[20] & 0x08) return complete_check(t, invalid_param_field(20, 3));  // SPEC_I_PT
  if (p[20] & 0x04) return complete_check(t, invalid_param_field(20, 2));  // ALL_TG_PT
  if (p[20] & 0x01) return complete_check(t, invalid_param_field(20, 0));  // APTPL: nothing survives power loss
  const bool typed = sa == kSaReserve || sa == kSaRelease || sa == kSaPreempt;
  if (typed && scope != 0) return complete_check(t, invalid_cdb_field(2, 7));
  if (typed && !valid_type(type)) return complete_check(t, invalid_cdb_field(2, 3));
  Outcome o;
  {
    Device::Shared& sh = shared(t);
    std::lock_guard lock(sh.mu);
    o = reserve_out(sh, lun, t->nexus, sa, type, get64(p), get64(p + 8));
    lun.pr_type.store(sh.prs[lun.id].type, std::memory_order_release);
  }
  if (o.status == kStatusCheckCondition) return complete_check(t, o.sense);
  if (o.status != kStatusGood) return complete_status(t, o.status);
  complete_good(t);
}

}  // namespace sluice::scsi
