// One `sluice perf` job: a region of one device, driven from one thread at a fixed queue
// depth.
//
// The job keeps queue_depth requests in flight: each completion callback records the
// request's latency and submits the slot's next request at once, so the only loop around it
// is "poll the channel". Every slot owns its request context and DMA-aligned buffers,
// allocated in setup(): nothing is allocated per I/O. A full channel (Errc::busy) parks the
// slot and poll() retries it; any other failure is counted and reported.
//
// Everything here runs on the job's thread: setup(), start(), poll(), the deadline and stop
// calls, and teardown().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/histogram.h"
#include "base/intrusive_list.h"
#include "base/status.h"
#include "bdev/bdev.h"
#include "perf/pattern.h"
#include "perf/rng.h"
#include "perf/workload.h"

namespace sluice::perf {

struct JobConfig {
  std::string target;              // the device spec, for reports
  bdev::BdevDesc* desc = nullptr;  // the job's own handle: a handle is used by one thread only
  Workload workload = Workload::randread;
  bool verify_only = false;  // verify: skip the write pass, check what an earlier run wrote
  uint32_t io_size = 4096;
  uint32_t queue_depth = 32;
  uint32_t rwmixread = 50;  // rw: percent of reads
  uint64_t seed = 0;        // the pattern's seed, the same for every job of a run
  uint64_t rng_seed = 0;    // offsets; differs per job
  uint64_t first_block = 0; // the job's region: [first_block, first_block + num_ios * io blocks)
  uint64_t num_ios = 0;
};

// What a job did; the runner adds where and for how long it ran.
struct JobStats {
  uint64_t ios = 0;  // completed requests
  uint64_t errors = 0;
  uint64_t verify_passes = 0;  // complete write-and-check passes (or check passes)
  Histogram latency_ticks;
  std::string first_error;     // empty when none
};

class Job {
 public:
  explicit Job(JobConfig cfg);
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  Status setup();
  void start();
  // One turn of the job's loop: reaps completions (whose callbacks resubmit) and retries
  // requests the channel refused as busy. True if it did anything.
  bool poll() {
    const int events = bdev::poll(ch_);
    return service() || events > 0;
  }
  // The TSC time of the current turn, read once by the driver before it polls: completions
  // reaped in this turn are stamped with it, and so are the requests their callbacks submit.
  // A TSC read costs ~10 ns on some machines (an AMD EPYC VM here), a quarter of the whole
  // per-I/O budget on a null device, and one read per turn serves up to queue-depth
  // completions. Each latency is then exact to within one turn (about a microsecond at
  // QD32 on null; far below a real device's latency).
  void set_turn_time(uint64_t ticks) { now_ = ticks; }
  // poll() without the channel, for a reactor that polls its thread's channels itself.
  // True if it resubmitted anything.
  bool service() {
    if (!retry_.empty()) [[unlikely]] return retry();
    return false;
  }
  // Time is up. Most workloads stop issuing; verify still reads back what it wrote.
  void deadline_reached();
  // Stop issuing now (Ctrl-C, an error elsewhere). In-flight requests still complete.
  void stop();
  bool done() const { return finished_ && in_flight_ == 0; }
  void teardown();

  const JobConfig& config() const { return cfg_; }
  // ios: every completed request (the latency histogram counts them).
  JobStats stats() const {
    JobStats s = stats_;
    s.ios = s.latency_ticks.count();
    return s;
  }

 private:
  struct Slot {
    Job* job = nullptr;
    char* rbuf = nullptr;  // reads land here
    char* wbuf = nullptr;  // the pattern for writes
    uint64_t io_index = 0;
    uint64_t submit_ticks = 0;
    bool is_write = false;
    Slot* next = nullptr;  // retry queue link
  };
  enum class Phase : uint8_t { write, read };

  template <Workload W>
  static void on_done(void* arg, Errc status);
  static bdev::IoCallback callback_for(Workload w);
  template <Workload W>
  void pick(Slot* s);
  void complete(Slot* s, Errc status);
  // Picks the slot's next request and submits it; false if the job has nothing left for it.
  bool issue(Slot* s);
  bool next_verify(Slot* s);
  enum class Submitted : uint8_t { ok, busy, failed };
  Submitted try_submit(Slot* s);
  void submit(Slot* s) {
    if (try_submit(s) == Submitted::busy) [[unlikely]] retry_.push_back(s);
  }
  bool retry();
  void verify_phase_done();
  void check(Slot* s);
  void fail(Slot* s, Errc status, std::string_view how);
  void note_error(std::string message);

  JobConfig cfg_;
  bdev::IoCallback done_cb_;
  bdev::BdevChannel* ch_ = nullptr;
  uint32_t block_size_ = 0;
  uint64_t io_blocks_ = 0;
  Rng rng_;
  Pattern pattern_;
  std::vector<Slot> slots_;
  void* buffers_ = nullptr;
  IntrusiveQueue<Slot> retry_;
  uint32_t in_flight_ = 0;
  uint64_t now_ = 0;  // set_turn_time()
  bool finished_ = false;
  uint64_t next_seq_ = 0;  // read/write: the next I/O index

  // verify
  Phase phase_ = Phase::write;
  uint64_t generation_ = 0;
  uint64_t verify_next_ = 0;   // next I/O index of this phase
  uint64_t verify_limit_ = 0;  // this phase covers [0, verify_limit_)
  bool deadline_passed_ = false;

  JobStats stats_;
};

}  // namespace sluice::perf
