// The userspace NVMe driver: controllers reached through a PciDevice (VFIO, UIO or the
// software model), an admin queue for the control path and polled I/O queue pairs for the
// data path, one per thread.
//
//   auto ctrl = nvme::Controller::open("0000:00:04.0");   // bring-up, identify
//   auto q = (*ctrl)->create_io_queue();                  // on the thread that will use it
//   (*q)->read(1, iov, 1, lba, nlb, on_done, arg);        // queued; rings at the next poll
//   while (!done) (*q)->poll();                           // doorbells, completions, timeouts
//
// Rules: an IoQueue belongs to one thread (submit and poll there; callbacks run inside
// poll()). Buffers should be env DMA memory; anything else is bounced through DMA memory and
// counted. Submissions are batched: poll() rings each doorbell once for everything queued
// since the last poll. A command that outlives its timeout is aborted; if the abort does not
// complete it either, the controller is reset and every queue's outstanding commands fail
// with Errc::aborted. The bdev scheme nvme:BDF[/NSID] (nvme_bdev.cc) sits on top of this.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "nvme/nvme_spec.h"
#include "nvme/pci_device.h"

namespace sluice::nvme {

struct ControllerOptions {
  uint32_t admin_queue_entries = 32;
  uint32_t io_queue_entries = 256;      // default size of each I/O queue (capped by CAP.MQES)
  uint16_t io_queues_wanted = 64;       // asked for with Set Features (Number of Queues)
  uint32_t max_transfer_bytes = 1 << 20;  // upper bound; the controller's MDTS may lower it
  uint64_t io_timeout_ms = 30000;       // per I/O command; 0 disables
  uint64_t admin_timeout_ms = 30000;
  std::string sysfs_root = "/sys";
};

// What a command's callback receives.
struct Completion {
  uint16_t status = 0;  // the CQE status field with the phase bit cleared
  uint32_t dw0 = 0;
  uint32_t dw1 = 0;  // fabrics Property Get of an 8-byte register: its high half
  bool timed_out = false;        // it outlived its timeout (and was aborted)
  bool reset_aborted = false;    // failed locally by a controller reset, never completed

  bool ok() const { return status == 0 && !reset_aborted; }
  uint8_t sct() const { return spec::status_sct(status); }
  uint8_t sc() const { return spec::status_sc(status); }
  Errc errc() const;
};

// "LBA out of range (SCT 0 SC 0x80)"
std::string status_text(uint16_t status);
// A Status naming `what` and the decoded completion, or Ok.
Status completion_status(const Completion& c, std::string_view what);

using CommandCallback = void (*)(void* arg, const Completion& c);

struct ControllerInfo {
  std::string bdf, transport;  // transport: the PciDevice kind
  uint16_t vid = 0, ssvid = 0, cntlid = 0;
  std::string serial, model, firmware, subnqn;
  uint32_t version = 0;              // VS register: major << 16 | minor << 8 | tertiary
  uint32_t max_transfer_bytes = 0;   // what this driver uses: min(MDTS, options)
  uint32_t max_queue_entries = 0;    // CAP.MQES + 1
  uint32_t namespace_count = 0;      // NN
  uint16_t io_queues = 0;            // granted by Set Features
  uint16_t oncs = 0;
  bool volatile_write_cache = false;
  bool supports_dsm = false, supports_write_zeroes = false;
  uint32_t sgls = 0;
  uint32_t ready_timeout_ms = 0;     // CAP.TO
  uint32_t in_capsule_bytes = 0;     // fabrics: write data that rides in the command capsule (IOCCSZ)
};

struct NamespaceInfo {
  uint32_t nsid = 0;
  uint64_t size_blocks = 0, capacity_blocks = 0, used_blocks = 0;
  uint32_t block_size = 0;
  uint16_t metadata_size = 0;
  bool deallocate_reads_zeroes = false;
};

struct SmartLog {
  uint8_t critical_warning = 0;
  uint16_t temperature_kelvin = 0;
  uint8_t available_spare = 0, spare_threshold = 0, percent_used = 0;
  // 128-bit counters, reported to 64 bits.
  uint64_t data_units_read = 0, data_units_written = 0, host_reads = 0, host_writes = 0, busy_minutes = 0,
           power_cycles = 0, power_on_hours = 0, unsafe_shutdowns = 0, media_errors = 0, error_log_entries = 0;
};

struct ErrorLogEntry {
  uint64_t error_count = 0;
  uint16_t sqid = 0, cid = 0, status = 0;
  uint64_t lba = 0;
  uint32_t nsid = 0;
};

class IoQueue;
class AdminQueue;
struct TcpTarget;
namespace tcp {
class HostQueue;
}

class Controller : public std::enable_shared_from_this<Controller> {
 public:
  // Opens the PCI function (pci_device.h) and brings the controller up.
  static Result<std::shared_ptr<Controller>> open(std::string_view bdf, const ControllerOptions& options = {});
  static Result<std::shared_ptr<Controller>> attach(std::unique_ptr<PciDevice> device,
                                                    const ControllerOptions& options = {});
  // A controller over NVMe/TCP (fabrics_device.h): a new association with `target`'s
  // subsystem, brought up by the same code as a PCIe controller.
  static Result<std::shared_ptr<Controller>> connect_tcp(const TcpTarget& target,
                                                         const ControllerOptions& options = {});
  // Every IoQueue holds its controller, so this runs after they are gone: clean shutdown.
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  const ControllerInfo& info() const { return info_; }
  const ControllerOptions& options() const { return options_; }
  std::vector<NamespaceInfo> namespaces() const;
  Result<NamespaceInfo> namespace_info(uint32_t nsid) const;

  // A new I/O queue pair for the calling thread; `entries` 0: options().io_queue_entries.
  Result<std::unique_ptr<IoQueue>> create_io_queue(uint32_t entries = 0);

  // ---- Admin commands (any thread; serialized) ----
  Result<SmartLog> smart_log(uint32_t nsid = 0xffffffff);
  Result<std::vector<ErrorLogEntry>> error_log(uint32_t max_entries = 16);
  // Aborts command `cid` of submission queue `sqid`; true when the controller aborted it.
  Result<bool> abort(uint16_t sqid, uint16_t cid);
  // Raw admin command with an optional data buffer of `len` bytes (copied in/out through DMA
  // memory): for tools. `write` sends the buffer to the controller.
  Result<Completion> admin_command(const spec::Sqe& cmd, void* data, size_t len, bool write = false);

  // Disables and re-enables the controller and redoes the admin setup. Every I/O queue
  // notices at its next poll, fails what it had outstanding with Errc::aborted and creates
  // its queues again.
  Status reset();
  // Deletes nothing and stops the controller with CC.SHN (normal shutdown), waiting for
  // CSTS.SHST. Further commands fail. Runs at destruction if not called.
  Status shutdown();

  bool failed() const { return failed_.load(std::memory_order_acquire); }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  PciDevice& device() { return *device_; }

 private:
  friend class IoQueue;
  Controller(std::unique_ptr<PciDevice> device, const ControllerOptions& options);
  Status bring_up();
  Status disable();
  Status enable();
  Status identify();
  Status set_queue_count();
  Result<NamespaceInfo> identify_namespace(uint32_t nsid);
  Status create_queue_pair(uint16_t qid, uint32_t entries, uint64_t sq_iova, uint64_t cq_iova);
  Status delete_queue_pair(uint16_t qid);
  Result<uint16_t> take_qid();
  void give_qid(uint16_t qid);
  // Admin command with DMA data (`data` must be DMA memory or null).
  Result<Completion> admin_sync(spec::Sqe& cmd, void* dma, size_t len);

  std::unique_ptr<PciDevice> device_;
  ControllerOptions options_;
  ControllerInfo info_;
  uint64_t cap_ = 0;
  uint32_t dstrd_ = 0;
  mutable std::mutex mu_;  // admin queue, namespaces, qid bitmap
  std::unique_ptr<AdminQueue> admin_;
  std::vector<NamespaceInfo> namespaces_;
  std::vector<bool> qid_used_;
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> generation_{0};
  bool shut_down_ = false;
};

class IoQueue {
 public:
  ~IoQueue();
  IoQueue(const IoQueue&) = delete;
  IoQueue& operator=(const IoQueue&) = delete;

  uint16_t id() const { return qid_; }
  uint32_t entries() const { return entries_; }
  // Commands that may be outstanding at once (entries - 1: a full ring is never ambiguous).
  uint32_t capacity() const { return entries_ - 1; }
  uint32_t outstanding() const { return outstanding_; }
  Controller& controller() const { return *ctrl_; }

  // Queue a command. Errc::busy when the queue is full (poll and retry), invalid_argument
  // for a malformed request; callbacks only ever run inside poll().
  Errc read(uint32_t nsid, const iovec* iov, int iovcnt, uint64_t lba, uint32_t nlb, CommandCallback cb, void* arg);
  Errc write(uint32_t nsid, const iovec* iov, int iovcnt, uint64_t lba, uint32_t nlb, CommandCallback cb, void* arg);
  Errc flush(uint32_t nsid, CommandCallback cb, void* arg);
  Errc write_zeroes(uint32_t nsid, uint64_t lba, uint32_t nlb, CommandCallback cb, void* arg);
  // Dataset Management with the deallocate attribute: up to 256 ranges.
  Errc deallocate(uint32_t nsid, const spec::DsmRange* ranges, uint32_t count, CommandCallback cb, void* arg);

  // Rings the doorbell for what was queued, reaps completions (running their callbacks) and
  // handles timeouts and controller resets. Returns how many commands completed.
  int poll();

  // 0 disables; applies to commands submitted afterwards.
  void set_timeout_ms(uint64_t ms);

  struct Stats {
    uint64_t submitted = 0, completed = 0, errors = 0, timeouts = 0, bounces = 0, doorbells = 0, reconnects = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  friend class Controller;
  struct Slot;
  IoQueue(std::shared_ptr<Controller> ctrl, uint16_t qid, uint32_t entries);
  Status init();
  Status connect();
  Slot* take_slot();
  Errc submit_rw(uint8_t opc, uint32_t nsid, const iovec* iov, int iovcnt, uint64_t lba, uint32_t nlb,
                 CommandCallback cb, void* arg);
  Errc build_prps(Slot& slot, spec::Sqe& sqe, const iovec* iov, int iovcnt, size_t bytes);
  // Hands the command to the device: into the submission ring (PCIe), or to the connection
  // with its data `iov` (fabrics).
  Errc push(Slot& slot, spec::Sqe& sqe, CommandCallback cb, void* arg, const iovec* iov = nullptr, int iovcnt = 0);
  static void fabrics_done(void* arg, const Completion& c);
  static void fabrics_connected(void* arg, const Completion& c);
  int poll_fabrics();
  void maybe_check_timeouts();
  void finish(Slot& slot, Completion c);
  void check_timeouts(uint64_t now);
  void reconnect();

  std::shared_ptr<Controller> ctrl_;
  uint16_t qid_;
  uint32_t entries_;
  std::unique_ptr<tcp::HostQueue> tcp_;  // fabrics: this queue's connection (no rings)
  uint32_t sq_doorbell_ = 0, cq_doorbell_ = 0;
  spec::Sqe* sq_ = nullptr;
  spec::Cqe* cq_ = nullptr;
  uint32_t sq_tail_ = 0, sq_head_ = 0, cq_head_ = 0;
  uint16_t phase_ = 1;
  bool tail_dirty_ = false;
  bool cq_dirty_ = false;
  uint32_t outstanding_ = 0;
  uint64_t generation_ = 0;
  uint64_t timeout_ticks_ = 0;
  uint64_t next_timeout_check_ = 0;
  uint32_t prp_pages_per_slot_ = 0;
  uint8_t* prp_area_ = nullptr;  // DMA memory: prp_pages_per_slot_ pages per slot
  std::vector<Slot> slots_;
  std::vector<std::pair<uint32_t, uint32_t>> block_sizes_;  // (nsid, block size) at creation
  std::vector<uint16_t> free_cids_;
  bool connected_ = false;
  bool fabrics_connecting_ = false;  // the queue's Connect is outstanding
  bool reconnecting_ = false;  // its callbacks may poll; do not recurse
  Stats stats_;
};

// The bdev scheme nvme:BDF[/NSID][?qd=N&mt=BYTES&to=MS]: one bdev per namespace on a
// controller shared by every bdev of the same BDF. Registered at static initialization;
// call this from programs that might otherwise not link nvme_bdev.cc.
Status register_bdev_scheme();

// Brings up the controller at `bdf` (a canonical or short BDF) and registers one nvme bdev
// per active namespace, named `<prefix>n<NSID>` (SPDK's naming: "Nvme0" gives "Nvme0n1"),
// with `options` ("qd=64&mt=131072", the spec's) on each. Returns their names in NSID
// order. If one fails, those already made are unregistered again.
Result<std::vector<std::string>> attach_namespaces(std::string_view bdf, std::string_view prefix,
                                                   std::string_view options = {});
// The same for the namespaces of a subsystem over NVMe/TCP (nvme-tcp: bdevs).
Result<std::vector<std::string>> attach_tcp_namespaces(const TcpTarget& target, std::string_view prefix,
                                                       std::string_view options = {});

}  // namespace sluice::nvme
