#include "perf/job.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/size.h"
#include "env/env.h"

namespace sluice::perf {

namespace {

constexpr size_t kMinBufferAlign = env::kDmaPageSize;
constexpr int kPoison = 0xa5;  // fills read buffers before a verify read

}  // namespace

Job::Job(JobConfig cfg)
    : cfg_(std::move(cfg)), done_cb_(callback_for(cfg_.workload)), rng_(cfg_.rng_seed), pattern_(cfg_.seed) {}

Job::~Job() { env::dma_free(buffers_); }

Status Job::setup() {
  const bdev::Geometry& geo = cfg_.desc->geometry();
  block_size_ = geo.block_size;
  io_blocks_ = cfg_.io_size / block_size_;
  if (io_blocks_ == 0 || cfg_.io_size % block_size_ != 0 || cfg_.io_size % Pattern::kSector != 0)
    return Status(Errc::invalid_argument, fmt::format("io size {} is not a multiple of the block size {} of {}",
                                                      cfg_.io_size, block_size_, cfg_.target));
  const size_t align = std::max<size_t>(kMinBufferAlign, geo.buf_align);
  const size_t per_buffer = (cfg_.io_size + align - 1) / align * align;
  const bool reads = workload_reads(cfg_.workload);
  const bool writes = workload_writes(cfg_.workload, cfg_.verify_only);
  const size_t per_slot = per_buffer * ((reads ? 1 : 0) + (writes ? 1 : 0));
  const size_t total = per_slot * cfg_.queue_depth;
  // DMA memory: what a userspace driver can hand to a device, and what the uring backend has
  // registered as fixed buffers.
  buffers_ = env::dma_zalloc(total, align);  // zeroing also faults the pages in before the run
  if (buffers_ == nullptr)
    return Status(Errc::no_space, fmt::format("cannot allocate {} of DMA memory for I/O buffers", format_size(total)));

  slots_.resize(cfg_.queue_depth);
  char* at = static_cast<char*>(buffers_);
  for (Slot& s : slots_) {
    s.job = this;
    if (reads) { s.rbuf = at; at += per_buffer; }
    if (writes) {
      s.wbuf = at;
      at += per_buffer;
      pattern_.fill(s.wbuf, cfg_.io_size, generation_);
    }
  }

  auto ch = cfg_.desc->get_channel();
  if (!ch.ok()) return Status(ch.status().code(), fmt::format("{}: {}", cfg_.target, ch.status().message()));
  ch_ = *ch;
  return Status::Ok();
}

void Job::teardown() {
  if (ch_ == nullptr) return;
  // Requests still in flight would complete into freed slots: stop reissuing, then drain.
  stop();
  while (in_flight_ > 0) bdev::poll(ch_);
  (void)cfg_.desc->put_channel(ch_);
  ch_ = nullptr;
}

void Job::start() {
  if (cfg_.workload == Workload::verify) {
    phase_ = cfg_.verify_only ? Phase::read : Phase::write;
    generation_ = cfg_.verify_only ? Pattern::kAnyGeneration : 0;
    verify_next_ = 0;
    verify_limit_ = cfg_.num_ios;
  }
  now_ = clock::ticks();
  for (Slot& s : slots_)
    if (!issue(&s)) break;
  if (in_flight_ == 0 && retry_.empty()) finished_ = true;  // every submit failed
}

Job::Submitted Job::try_submit(Slot* s) {
  const uint64_t block = cfg_.first_block + s->io_index * io_blocks_;
  s->submit_ticks = now_;
  if (s->is_write) Pattern::stamp(s->wbuf, cfg_.io_size, block * block_size_);
  // Initialized in place (no default Status plus move-assignment: ~20 instructions per I/O).
  const Status st = s->is_write ? cfg_.desc->write(ch_, s->wbuf, block, io_blocks_, done_cb_, s)
                                : cfg_.desc->read(ch_, s->rbuf, block, io_blocks_, done_cb_, s);
  if (st.ok()) [[likely]] {
    ++in_flight_;
    return Submitted::ok;
  }
  if (st.code() == Errc::busy) return Submitted::busy;  // back-pressure: poll() retries it
  fail(s, st.code(), st.message().empty() ? "was refused" : fmt::format("was refused: {}", st.message()));
  if (in_flight_ == 0 && retry_.empty()) finished_ = true;  // nothing left running
  return Submitted::failed;
}

// The per-I/O path: a completion records its latency and reissues its slot. One instance
// per workload, so choosing the next request compiles to a few instructions; errors, verify
// and stopping take complete().
template <Workload W>
void Job::on_done(void* arg, Errc status) {
  auto* s = static_cast<Slot*>(arg);
  Job& job = *s->job;
  job.stats_.latency_ticks.record(job.now_ - s->submit_ticks);
  --job.in_flight_;
  if (W == Workload::verify || status != Errc::ok || job.finished_) [[unlikely]] {
    job.complete(s, status);
    return;
  }
  job.pick<W>(s);
  job.submit(s);
}

void Job::complete(Slot* s, Errc status) {
  if (status != Errc::ok) {
    fail(s, status, "failed");
  } else if (cfg_.workload == Workload::verify && !s->is_write) {
    check(s);
  }
  if (finished_) return;
  if (!issue(s) && cfg_.workload == Workload::verify && in_flight_ == 0 && retry_.empty())
    verify_phase_done();
}

template <Workload W>
void Job::pick(Slot* s) {
  if constexpr (W == Workload::randread || W == Workload::randwrite) {
    s->is_write = W == Workload::randwrite;
    s->io_index = rng_.below(cfg_.num_ios);
  } else if constexpr (W == Workload::rw) {
    s->is_write = rng_.below(100) >= cfg_.rwmixread;
    s->io_index = rng_.below(cfg_.num_ios);
  } else if constexpr (W == Workload::read || W == Workload::write) {
    s->is_write = W == Workload::write;
    s->io_index = next_seq_;
    if (++next_seq_ == cfg_.num_ios) next_seq_ = 0;
  }
}

bdev::IoCallback Job::callback_for(Workload w) {
  switch (w) {
    case Workload::read: return &on_done<Workload::read>;
    case Workload::write: return &on_done<Workload::write>;
    case Workload::randread: return &on_done<Workload::randread>;
    case Workload::randwrite: return &on_done<Workload::randwrite>;
    case Workload::rw: return &on_done<Workload::rw>;
    case Workload::verify: return &on_done<Workload::verify>;
  }
  return nullptr;
}

bool Job::issue(Slot* s) {
  switch (cfg_.workload) {
    case Workload::read: pick<Workload::read>(s); break;
    case Workload::write: pick<Workload::write>(s); break;
    case Workload::randread: pick<Workload::randread>(s); break;
    case Workload::randwrite: pick<Workload::randwrite>(s); break;
    case Workload::rw: pick<Workload::rw>(s); break;
    case Workload::verify:
      if (!next_verify(s)) return false;
      break;
  }
  submit(s);
  return true;
}

// Resubmits parked requests in order, until the channel is full again. True if any left the
// queue.
bool Job::retry() {
  bool moved = false;
  while (Slot* s = retry_.front()) {
    if (finished_) {
      retry_ = {};  // stopped meanwhile: drop them
      moved = true;
      break;
    }
    if (try_submit(s) == Submitted::busy) break;
    retry_.pop_front();
    moved = true;
  }
  if (!finished_ && in_flight_ == 0 && retry_.empty() && cfg_.workload != Workload::verify)
    finished_ = true;  // every parked request failed
  if (cfg_.workload == Workload::verify && !finished_ && in_flight_ == 0 && retry_.empty() &&
      verify_next_ >= verify_limit_)
    verify_phase_done();
  return moved;
}

void Job::deadline_reached() {
  if (cfg_.workload != Workload::verify) {
    stop();
    return;
  }
  if (cfg_.verify_only || deadline_passed_) return;  // a check pass always covers the region
  deadline_passed_ = true;
  if (phase_ == Phase::write) {
    verify_limit_ = verify_next_;  // write no more; read back what was written
    if (in_flight_ == 0 && retry_.empty()) verify_phase_done();
  }
}

void Job::stop() {
  finished_ = true;
  retry_ = {};
}

// verify: hands out the current phase's I/Os in order.
bool Job::next_verify(Slot* s) {
  if (verify_next_ >= verify_limit_) return false;
  s->io_index = verify_next_++;
  s->is_write = phase_ == Phase::write;
  if (!s->is_write) std::memset(s->rbuf, kPoison, cfg_.io_size);  // a read that moves no data must not pass
  return true;
}

// verify: the last request of a phase completed. Writes are followed by reading them back;
// a read pass by another write pass with a new generation, until the deadline.
void Job::verify_phase_done() {
  while (!finished_) {
    if (phase_ == Phase::write) {
      phase_ = Phase::read;
      verify_limit_ = verify_next_;
    } else {
      ++stats_.verify_passes;
      if (deadline_passed_ || cfg_.verify_only) {
        finished_ = true;
        return;
      }
      ++generation_;
      for (Slot& s : slots_) pattern_.fill(s.wbuf, cfg_.io_size, generation_);
      phase_ = Phase::write;
      verify_limit_ = cfg_.num_ios;
    }
    verify_next_ = 0;
    for (Slot& s : slots_)
      if (!issue(&s)) break;
    if (in_flight_ > 0 || !retry_.empty()) return;
  }
}

void Job::check(Slot* s) {
  const uint64_t block = cfg_.first_block + s->io_index * io_blocks_;
  auto m = pattern_.check(s->rbuf, cfg_.io_size, block * block_size_, generation_);
  if (!m) return;
  ++stats_.errors;
  note_error(fmt::format("verify failed at byte offset {} of {}: expected {:#04x}, found {:#04x}; {}", m->offset,
                         cfg_.target, m->expected, m->actual, m->detail));
  finished_ = true;
}

void Job::fail(Slot* s, Errc status, std::string_view how) {
  ++stats_.errors;
  const uint64_t block = cfg_.first_block + s->io_index * io_blocks_;
  if (stats_.first_error.empty())
    note_error(fmt::format("{} of blocks [{}, +{}) on {} {}: {}", s->is_write ? "write" : "read", block, io_blocks_,
                           cfg_.target, how, errc_name(status)));
  if (cfg_.workload == Workload::verify) finished_ = true;
}

void Job::note_error(std::string message) {
  if (stats_.first_error.empty()) stats_.first_error = std::move(message);
}

}  // namespace sluice::perf
