// The SCSI layer's internals (src/target/scsi only).
//
// Shared between threads: Lun (immutable after add_lun, except its atomics) and
// Device::Shared (its mutex guards the nexuses, their unit attentions and the reservations).
// A thread's own: its Channels and the LunChannels they share (thread_local, channel.cc).
#pragma once

#include <atomic>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bdev/bdev.h"
#include "target/scsi/cdb.h"
#include "target/scsi/scsi.h"
#include "target/scsi/sense.h"

namespace sluice::scsi {

struct Lun {
  uint64_t id = 0;
  std::string bdev_name;
  std::unique_ptr<bdev::BdevDesc> desc;
  bool read_only = false;
  std::string serial;
  size_t index = 0;  // in Device::Shared::luns
  uint64_t naa = 0;  // the low 60 bits of an NAA 3 designator: stable per device, bdev name and LUN
  // Mode parameters any nexus may change (MODE SELECT), read by every thread's data path.
  std::atomic<bool> write_cache{true};    // WCE; off: every write is forced to the medium
  std::atomic<bool> d_sense{false};       // descriptor-format sense
  std::atomic<bool> stopped{false};       // START STOP UNIT with START = 0
  std::atomic<uint32_t> prevent{0};       // nexuses that PREVENT MEDIUM REMOVAL
  std::atomic<uint64_t> known_blocks{0};  // the capacity last reported; a change raises a unit attention
  std::atomic<uint64_t> reserved_by{0};   // SPC-2 RESERVE holder's nexus; 0: none
  // The persistent reservation's type (0: none), for the data path's check; the rest of the
  // persistent reservation state is Device::Shared's.
  std::atomic<uint8_t> pr_type{0};

  const bdev::Geometry& geometry() const { return desc->geometry(); }
  uint32_t block_size() const { return geometry().block_size; }
  uint64_t num_blocks() const { return geometry().num_blocks; }
};

struct UnitAttention {
  uint64_t lun;
  uint16_t asc;
};

struct Nexus {
  std::string initiator_port;
  uint16_t relative_target_port = 1;
  std::deque<UnitAttention> attentions;  // oldest first
  std::vector<uint64_t> prevented;       // LUNs this nexus keeps from being ejected (PREVENT ALLOW)
};

// A persistent reservation registrant: an I_T nexus named as SPC-4 does, by initiator port and
// relative target port, so that it outlives the session (the nexus id) it registered in.
struct Registrant {
  std::string initiator_port;
  uint16_t relative_target_port = 1;
  uint64_t key = 0;
};

struct PersistentReservation {
  std::vector<Registrant> registrants;
  uint32_t generation = 0;
  uint8_t type = 0;  // 0: no reservation
  // The holder's index in `registrants`; the all-registrants types have none (every
  // registrant holds the reservation).
  size_t holder = 0;
};

struct Device::Shared {
  std::vector<std::shared_ptr<Lun>> luns;  // sorted by id; fixed once a Channel exists
  std::atomic<int> channels{0};

  mutable std::mutex mu;  // guards what follows
  std::map<uint64_t, Nexus> nexuses;
  uint64_t next_nexus = 1;
  // Unit attentions queued for any nexus: the data path looks under the mutex only when this
  // says there may be one.
  std::atomic<uint32_t> attentions{0};
  std::map<uint64_t, PersistentReservation> prs;  // by LUN

  Lun* find(uint64_t lun) const;
  // Queues `code` for the live nexuses of one registrant. Under mu.
  void raise_registrant_locked(const Registrant& r, uint64_t lun, uint16_t code);
  // Queues `code` for every nexus but `except` on `lun`. Under mu.
  void raise_locked(uint64_t lun, uint16_t code, uint64_t except);
  void raise(uint64_t lun, uint16_t code, uint64_t except);
  // Takes the oldest unit attention of `nexus` on `lun`, if any.
  bool take_attention(uint64_t nexus, uint64_t lun, uint16_t* code);
};

// A thread's channel to one LUN's bdev, shared by the thread's Channels, and the writes it has
// in flight (for COMPARE AND WRITE's exclusion).
struct LunChannel {
  Lun* lun = nullptr;
  uint32_t refs = 0;  // Channels of this thread using it
  bdev::BdevChannel* ch = nullptr;
  Task* writes = nullptr;   // in flight, a doubly linked list through state.next/prev
  Task* blocked = nullptr;  // waiting for an overlapping write or COMPARE AND WRITE, FIFO
  Task* blocked_tail = nullptr;
};

// ---- Completion helpers (task.cc) ----
// Ends the task: done() runs, the Channel forgets it. Frees the bounce buffer.
void complete(Task* t);
void complete_good(Task* t);
// CHECK CONDITION with `s`, in the sense format of the task's LUN.
void complete_check(Task* t, const SenseData& s);
// Status without sense (RESERVATION CONFLICT, BUSY).
void complete_status(Task* t, uint8_t status);
// No DMA memory for a bounce buffer: BUSY, which initiators retry, as the shortage passes.
inline void complete_no_memory(Task* t) { complete_status(t, kStatusBusy); }
// Copies a response of n bytes into the data-in buffers, cut to `alloc` and to what the
// transport expects, and completes GOOD with the residual set.
void complete_data_in(Task* t, const void* data, size_t n, uint32_t alloc);
// The first n bytes of the data-in buffers filled from data (as far as they reach).
void copy_to_iov(Task* t, const void* data, size_t n);
// The data-out bytes [offset, offset + n) gathered into dst; false if the iovecs are short.
bool copy_from_iov(const Task* t, size_t offset, void* dst, size_t n);
// The sense for a bdev error: reads and writes fail differently.
SenseData sense_of(Errc e, bool write);
Lun* task_lun(const Task* t);
Device::Shared& shared(const Task* t);

// ---- Command handlers; each ends in complete*() now or later ----
void inquiry(Task* t, Lun* lun);            // inquiry.cc
void mode_sense(Task* t, Lun& lun);         // mode_pages.cc
void mode_select(Task* t, Lun& lun);        // mode_pages.cc
void read_capacity(Task* t, Lun& lun);      // capacity.cc
void get_lba_status(Task* t, Lun& lun);     // capacity.cc
void block_io(Task* t, Lun& lun);           // block_io.cc: READ, WRITE, VERIFY, WRITE AND VERIFY, SYNC
void unmap(Task* t, Lun& lun);              // provisioning.cc
void write_same(Task* t, Lun& lun);         // provisioning.cc
void compare_and_write(Task* t, Lun& lun);  // compare_write.cc
void or_write(Task* t, Lun& lun);           // compare_write.cc
void report_luns(Task* t);                  // lun_commands.cc
void read_defect_data(Task* t);             // defect_data.cc
void request_sense(Task* t);                // lun_commands.cc
void report_supported_opcodes(Task* t);     // opcodes.cc
void start_stop_unit(Task* t, Lun& lun);    // lun_commands.cc
void prevent_allow(Task* t, Lun& lun);      // lun_commands.cc
void reserve_release(Task* t, Lun& lun);    // reservations.cc
// SPC-2 reservation check: true if `t` may run on `lun` (reservations.cc).
bool reservation_allows(const Task* t, const Lun& lun);
void persistent_reserve_in(Task* t, Lun& lun);   // persistent_reservations.cc
void persistent_reserve_out(Task* t, Lun& lun);  // persistent_reservations.cc
// Persistent reservation check: true if `t` may run on `lun` (persistent_reservations.cc).
bool persistent_reservation_allows(const Task* t, const Lun& lun);

// ---- Bdev submission with back-pressure (task.cc) ----
// Runs submit(t) now; if the channel is busy, again once it has room.
using SubmitFn = Status (*)(Task* t);
void submit_with_retry(Task* t, SubmitFn submit, bool write);

// ---- Writes in flight on a LunChannel (compare_write.cc) ----
// Admits a write-like task: false if it must wait (it is queued and `resume` runs later).
// [lba, end): the blocks it writes; exclusive: a COMPARE AND WRITE.
bool admit_write(Task* t, uint64_t lba, uint64_t end, bool exclusive, void (*resume)(Task*));
// A write-like task finished its bdev work: drop it from the list, resume waiters.
void retire_write(Task* t);

}  // namespace sluice::scsi
