// A SCSI block device (SPC-4, SBC-3) over Sluice bdevs, for any transport (iSCSI,
// vhost-user-scsi): the transport hands a Task (CDB, LUN, data buffers) to a Channel and gets
// it back completed with a SCSI status, sense data and a residual.
//
//   scsi::Device dev({.name = "disk0", .serial = "SL0001"});  // control path, any thread
//   dev.add_lun(0, "malloc0");
//   uint64_t nexus = dev.add_nexus("iqn.2026-12.io.sluice:host,i,0x23d000000001", 1);
//
//   // The transport, on the thread that owns a connection:
//   scsi::Channel ch(dev);                      // this thread's bdev channels
//   task->cdb = ...; task->lun = 0; task->nexus = nexus; task->iov = ...; task->done = on_done;
//   ch.execute(task);                           // on_done(task) later, on this thread
//   ...                                         // once ch.in_flight() == 0: destroy ch
//
// Threads: a Channel belongs to the thread that made it. It gets that thread's channel to
// each LUN's bdev at the LUN's first task; execute(), the bdev completions and done() all run
// on that thread (done() possibly inside execute(), never on another thread). The thread must
// poll its bdev channels (a reactor does; another thread calls thread::poll_thread_channels()).
// A Channel must be destroyed on its thread, outside any bdev completion, with nothing in
// flight. Reads and writes take no lock: what the LUNs of a Device share between threads (unit
// attentions, reservations, mode parameters) sits behind the Device's mutex, and the data path
// reaches it only when a flag (an atomic) says something is pending.
//
// Data: zero copy. For READ the bdev reads straight into the task's iovecs, for WRITE it writes
// straight from them, so they must meet the bdev's alignment (env::dma_alloc memory does).
// Small responses (INQUIRY, MODE SENSE, ...) are copied into the iovecs, cut to the CDB's
// allocation length and to `expected_length`. A READ, WRITE or WRITE AND VERIFY that needs more
// than `expected_length` moves what fits (READ: those bytes; the writes: the whole blocks sent)
// and reports the rest as Residual::overflow; VERIFY with BYTCHK and COMPARE AND WRITE refuse
// (INVALID FIELD IN CDB). One that needs less moves what it needs (Residual::underflow), except
// COMPARE AND WRITE, which refuses that too. When the iovecs hold more than a READ or WRITE moves,
// the first bytes are used, and the part used must fit in four segments.
//
// Atomicity: COMPARE AND WRITE excludes overlapping writes submitted on the same thread, by
// any of its Channels (writes to the same blocks wait while it runs, and it waits for those in
// flight). Writes from other threads are not held back: a transport whose initiators share a
// LUN from several threads and rely on COMPARE AND WRITE (VMware ATS) must run that LUN's
// tasks on one thread, or set max_compare_write_blocks = 0, which VPD page B0h reports and
// which makes every COMPARE AND WRITE fail.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "bdev/bdev.h"

namespace sluice::scsi {

inline constexpr size_t kMaxCdbLength = 32;
inline constexpr size_t kMaxSenseLength = 96;  // what we produce; SPC allows 252

// SAM status codes.
inline constexpr uint8_t kStatusGood = 0x00;
inline constexpr uint8_t kStatusCheckCondition = 0x02;
inline constexpr uint8_t kStatusConditionMet = 0x04;
inline constexpr uint8_t kStatusBusy = 0x08;
inline constexpr uint8_t kStatusReservationConflict = 0x18;
inline constexpr uint8_t kStatusTaskSetFull = 0x28;
inline constexpr uint8_t kStatusTaskAborted = 0x40;

// Which way a command moves data, seen from the initiator: write = data-out (to us),
// read = data-in (to the initiator).
enum class DataDirection : uint8_t { none, write, read };
// The data direction the CDB implies, for transports that need it before execution
// (vhost-user-scsi does not say). Unknown opcodes: none.
DataDirection data_direction(const uint8_t* cdb);

enum class Residual : uint8_t {
  none,
  underflow,  // less data moved than expected_length (residual = the shortfall)
  overflow,   // the command wanted more than expected_length (residual = the excess)
};

struct Task;
using TaskDone = void (*)(Task* task);

class Channel;
struct Lun;
struct LunChannel;

namespace detail {
// The SCSI layer's per-task state. The transport leaves it alone.
struct TaskState {
  Channel* channel = nullptr;
  LunChannel* lc = nullptr;
  void* buf = nullptr;  // a bounce buffer (COMPARE AND WRITE, VERIFY, WRITE SAME), DMA memory
  uint64_t lba = 0;     // the next block to submit
  uint64_t end = 0;     // one past the last block
  uint32_t step = 0;    // a multi-step command's progress
  uint32_t index = 0;   // UNMAP: the descriptor being unmapped
  uint32_t chunk = 0;   // blocks in the bdev request now in flight
  bool fua = false;
  bool locked = false;     // in its LunChannel's list of writes in flight
  bool exclusive = false;  // a COMPARE AND WRITE: overlapping writes wait for it
  uint64_t lock_lba = 0;   // the blocks it writes, while `locked`
  uint64_t lock_end = 0;
  Status (*retry)(Task*) = nullptr;  // the bdev submission to repeat once a busy channel has room
  void (*resume)(Task*) = nullptr;   // what runs when a blocked write may go
  Task* next = nullptr;              // LunChannel lists
  Task* prev = nullptr;
  Task* ready = nullptr;  // compare_write.cc: the order blocked writes resume in
  uint8_t mode = 0;       // VERIFY / WRITE AND VERIFY: BYTCHK; 1 in compare_write.cc: ORWRITE
  // The data buffers cut to the command's transfer length, when the transport's are longer.
  const iovec* iov = nullptr;
  int iovcnt = 0;
  std::array<iovec, 4> trimmed{};
  bdev::IoWaitEntry wait;
};
}  // namespace detail

struct Task {
  // ---- Set by the transport ----
  std::array<uint8_t, kMaxCdbLength> cdb{};
  uint8_t cdb_length = 0;  // 0: from the opcode's group
  uint64_t lun = 0;        // the LUN number (lun_from_wire() decodes the 8-byte field)
  uint64_t nexus = 0;      // from Device::add_nexus(); 0: an anonymous nexus
  // As the transport was told (iSCSI R/W bits), for its own use: the layer goes by the CDB.
  DataDirection direction = DataDirection::none;
  // The data-out data (write) or the buffers to fill (read); must stay valid until done().
  const iovec* iov = nullptr;
  int iovcnt = 0;
  uint32_t expected_length = 0;  // the expected data transfer length, bytes (at most the iovecs' total)
  TaskDone done = nullptr;       // required
  void* ctx = nullptr;           // the transport's

  // ---- Results, set before done() ----
  uint8_t status = kStatusGood;
  uint8_t sense_length = 0;
  std::array<uint8_t, kMaxSenseLength> sense{};
  uint32_t transferred = 0;  // data-in bytes produced, or data-out bytes consumed
  Residual residual_kind = Residual::none;
  uint32_t residual = 0;

  detail::TaskState state;
};

// SAM LUN encoding: peripheral device addressing below 256, flat space addressing up to 16383.
inline constexpr uint64_t kMaxLun = 16383;
std::array<uint8_t, 8> lun_to_wire(uint64_t lun);
uint64_t lun_from_wire(const uint8_t* wire);  // a LUN we never report (kMaxLun + 1) if malformed

struct DeviceOptions {
  std::string name;                     // target device name, in VPD page 0x83
  std::string vendor = "SLUICE";        // INQUIRY T10 VENDOR IDENTIFICATION, up to 8 characters
  std::string product = "Sluice disk";  // up to 16
  std::string revision = "0001";        // up to 4
  std::string serial;                   // VPD 0x80; empty: derived from name and LUN
  uint32_t max_transfer_blocks = 0;     // VPD 0xB0 MAXIMUM TRANSFER LENGTH; 0: none
  uint32_t max_write_same_blocks = 65535;
  uint32_t max_unmap_blocks = 65535;  // per UNMAP descriptor
  uint32_t max_unmap_descriptors = 256;
  uint8_t max_compare_write_blocks = 64;  // COMPARE AND WRITE NUMBER OF LOGICAL BLOCKS limit
};

// A SCSI target device: LUNs, each over a bdev, and the I_T nexuses that use them.
class Device {
 public:
  explicit Device(DeviceOptions options);
  ~Device();  // every Channel must be gone
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Control path, before any Channel exists: LUNs are fixed once tasks run. `on_remove`
  // runs when the bdev is hot-removed, on the thread that removed it (bdev::OpenOptions);
  // without it the LUN stays and its commands fail.
  Status add_lun(uint64_t lun, std::string_view bdev_name, bool read_only = false,
                 std::function<void()> on_remove = {});

  // An I_T nexus: the initiator port's name (iSCSI: "iqn...,i,0x<ISID>", which READ FULL
  // STATUS reports as an iSCSI TransportID) and the relative target port it came through (iSCSI:
  // the portal group tag). Any thread. The id goes in Task::nexus; remove it when the nexus goes
  // (iSCSI session end): its SPC-2 reservations and PREVENT MEDIUM REMOVAL go with it, its
  // persistent reservation registrations stay (SPC-4: a new nexus of the same initiator port
  // and target port has them). A new nexus gets no unit attention.
  uint64_t add_nexus(std::string initiator_port, uint16_t relative_target_port = 1);
  void remove_nexus(uint64_t nexus);

  // A LUN reset, a target reset, or a power cycle seen by the initiators: every nexus except
  // `from` (0: none) gets POWER ON, RESET, OR BUS DEVICE RESET OCCURRED on its next command,
  // SPC-2 reservations are released and a stopped unit starts; persistent reservations stay.
  // Tasks in flight are the transport's to abort or drain: this layer keeps no task set.
  void reset_lun(uint64_t lun, uint64_t from = 0);
  void reset(uint64_t from = 0);

  const DeviceOptions& options() const { return options_; }
  std::vector<uint64_t> luns() const;

  struct Shared;
  Shared& shared() const { return *shared_; }  // internal

 private:
  friend class Channel;
  DeviceOptions options_;
  std::unique_ptr<Shared> shared_;
};

// A thread's access to a Device (see the threading rule at the top).
class Channel {
 public:
  explicit Channel(Device& device);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Runs `task`; task->done(task) follows, on this thread.
  void execute(Task* task);
  uint32_t in_flight() const { return in_flight_; }
  Device& device() const { return device_; }

  // Internal: the command handlers' access.
  LunChannel* lun_channel(Lun& lun, Status* error);
  void finished() { --in_flight_; }

 private:
  Device& device_;
  std::vector<LunChannel*> luns_;  // by LUN index; shared with the thread's other Channels
  uint32_t in_flight_ = 0;
};

}  // namespace sluice::scsi
