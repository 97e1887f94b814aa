// A software NVMe controller for tests: registers, doorbells, admin and I/O queues, PRP
// walking into RAM namespaces, and injectable error completions and stalls.
//
// It checks what a real controller checks and refuses what one would refuse: queue ids and
// sizes, CQ before SQ, page-aligned queue bases, PRP alignment and list chaining, DMA only
// into memory the driver made reachable (enable_dma), doorbell values inside the queue,
// LBA ranges, command ids unique among outstanding commands. Protocol violations that a
// real device would not answer with a status (a bad doorbell write, a bad CC at enable) are
// counted in violations() and described by last_violation(), so tests can assert none.
//
// Commands run when their doorbell is written (I/O queues: at process() with
// process_on_doorbell off; admin commands always run at once). The driver sees a device
// through make_device(); the model outlives it.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nvme/nvme_spec.h"
#include "nvme/pci_device.h"

namespace sluice::nvme::testing {

struct ModelNamespace {
  uint32_t nsid = 1;
  uint32_t block_size = 512;
  uint64_t blocks = 1 << 15;  // 16 MiB at 512 B
};

struct ModelOptions {
  std::string bdf = "0000:fe:00.0";
  uint32_t max_queue_entries = 1024;  // CAP.MQES + 1
  uint32_t doorbell_stride = 0;       // CAP.DSTRD
  uint8_t timeout_units = 2;          // CAP.TO, 500 ms each
  uint8_t mdts = 6;                   // 2^6 pages = 256 KiB; 0: unlimited
  uint16_t max_io_queues = 16;
  std::vector<ModelNamespace> namespaces = {ModelNamespace{}};
  bool volatile_write_cache = true;
  bool process_on_doorbell = true;
  uint32_t ready_after_reads = 3;  // CSTS reads before RDY follows CC.EN (a slow controller)
  bool never_ready = false;        // RDY never rises: CAP.TO expires
};

// Makes matching commands fail with `status` or stall (never complete until released,
// aborted, their queue deleted or the controller reset).
struct Injection {
  static constexpr uint16_t kAnyQueue = 0xffff;
  static constexpr uint16_t kAnyOpcode = 0xffff;
  uint16_t qid = kAnyQueue;
  uint16_t opcode = kAnyOpcode;
  int count = 1;  // matches before it expires; -1: forever
  uint16_t status = 0;  // spec::make_status(...)
  bool stall = false;
};

class ControllerModel : public std::enable_shared_from_this<ControllerModel> {
 public:
  explicit ControllerModel(ModelOptions options = {});
  ~ControllerModel();

  const ModelOptions& options() const { return options_; }
  // A PciDevice that drives this model.
  std::unique_ptr<PciDevice> make_device();
  // Makes Controller::open(bdf) reach this model until unregister_as_test_device().
  void register_as_test_device();
  void unregister_as_test_device();

  // ---- Register access (what the device object forwards) ----
  uint32_t read32(uint32_t offset);
  void write32(uint32_t offset, uint32_t value);
  void enable_dma();

  void inject(const Injection& injection);
  void clear_injections();
  // Completes stalled commands successfully; returns how many.
  size_t release_stalled();
  size_t stalled() const;
  // Runs commands whose doorbells were written (process_on_doorbell off).
  void process();

  // Namespace contents, for assertions (nullptr for an unknown nsid).
  uint8_t* ns_data(uint32_t nsid);

  struct Counters {
    uint64_t commands = 0, admin_commands = 0, reads = 0, writes = 0, flushes = 0, write_zeroes = 0,
             deallocates = 0, aborts_done = 0, enables = 0, disables = 0, shutdowns = 0, unsafe_shutdowns = 0,
             error_completions = 0, doorbell_writes = 0, prp_list_pages = 0;
  };
  Counters counters() const;
  uint64_t violations() const;
  std::string last_violation() const;
  bool enabled() const;
  bool shutdown_complete() const;
  size_t io_queue_count() const;  // I/O SQs that exist now

 private:
  struct Sq {
    bool valid = false;
    uint64_t base = 0;
    uint32_t size = 0, head = 0, tail = 0;
    uint16_t cqid = 0;
  };
  struct Cq {
    bool valid = false;
    uint64_t base = 0;
    uint32_t size = 0, head = 0, tail = 0;
    uint16_t phase = 1;
    std::deque<spec::Cqe> pending;  // completions waiting for room
  };
  struct Stalled {
    uint16_t sqid;
    spec::Sqe sqe;
  };
  struct Namespace {
    ModelNamespace geo;
    std::vector<uint8_t> data;
  };
  struct Outcome {
    uint16_t status = 0;
    uint32_t dw0 = 0;
    bool stall = false;
  };

  void violation(std::string what);
  void enable_locked();
  void disable_locked(bool unsafe);
  void sq_doorbell(uint16_t qid, uint32_t value);
  void cq_doorbell(uint16_t qid, uint32_t value);
  void run_sq(uint16_t qid);
  void execute(uint16_t sqid, const spec::Sqe& sqe);
  void complete(uint16_t sqid, const spec::Sqe& sqe, uint16_t status, uint32_t dw0);
  void post(uint16_t cqid, const spec::Cqe& cqe);
  void drain_pending(Cq& cq);
  bool injected(uint16_t sqid, const spec::Sqe& sqe, Outcome& r);
  Outcome admin(const spec::Sqe& sqe);
  Outcome io(const spec::Sqe& sqe);
  Outcome create_cq(const spec::Sqe& sqe);
  Outcome create_sq(const spec::Sqe& sqe);
  Outcome delete_sq(const spec::Sqe& sqe);
  Outcome delete_cq(const spec::Sqe& sqe);
  Outcome identify(const spec::Sqe& sqe);
  Outcome get_log_page(const spec::Sqe& sqe);
  Outcome abort_command(const spec::Sqe& sqe);
  // DMA: host memory at `iova`, or nullptr (and a violation) when the driver never made it
  // reachable.
  uint8_t* dma(uint64_t iova, size_t len);
  // Walks the PRPs of `sqe` for `bytes`, calling fn(host pointer, length) per page run.
  // Returns a status code (0 when the PRPs are valid).
  template <typename Fn>
  uint16_t walk_prps(const spec::Sqe& sqe, size_t bytes, Fn fn);
  Namespace* find_ns(uint32_t nsid);
  bool cid_in_use(uint16_t sqid, uint16_t cid) const;
  void log_error(uint16_t sqid, const spec::Sqe& sqe, uint16_t status);

  ModelOptions options_;
  uint64_t cap_;
  mutable std::recursive_mutex mu_;
  uint32_t cc_ = 0, csts_ = 0, aqa_ = 0;
  uint64_t asq_ = 0, acq_ = 0;
  uint32_t reads_until_ready_ = 0;
  bool ready_target_ = false;
  uint16_t queues_granted_ = 0;  // after Set Features; 0: not set
  std::vector<Sq> sqs_;
  std::vector<Cq> cqs_;
  std::vector<Namespace> namespaces_;
  std::vector<Injection> injections_;
  std::vector<Stalled> stalled_;
  std::vector<std::pair<uintptr_t, uintptr_t>> regions_;  // DMA-reachable [begin, end)
  uint64_t watch_ = 0;
  Counters counters_;
  uint64_t violations_ = 0;
  std::string last_violation_;
  std::vector<spec::ErrorLogEntry> error_log_;  // newest first
  uint64_t error_count_ = 0;
  uint64_t data_units_read_ = 0, data_units_written_ = 0;  // in 512-byte units
  bool registered_ = false;
};

}  // namespace sluice::nvme::testing
