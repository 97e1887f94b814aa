// The crashsim bdev: a volatile write cache in front of any bdev, and a power switch. The
// model is described in crashsim.h and docs/crashsim.md.
//
// Structure: one CrashState per device, shared by every channel and by the control
// handles, guarded by one mutex. It holds the overlay (entries in issue order, plus an
// extent map from block ranges to the newest entry covering them), the flush machinery
// (one flush applies at a time, on its own thread's base channel) and the power state.
#include "bdev/crashsim.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <new>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"
#include "bdev/channel.h"
#include "bdev/crash_model.h"
#include "bdev/stacked.h"

namespace sluice::bdev {

using Buffer = CrashBuffer;

struct CrashState : CrashModel {
  std::string name;
  std::string base_name;
  uint32_t buf_align = 1;

  mutable std::mutex mu;  // guards everything, the model included
  // ---- flush application (under mu) ----
  bool applying = false;
  uint64_t apply_cursor = 0;   // next entry (seq) the applier sends to the base
  uint64_t apply_target = 0;   // the applier stops before this seq
  std::atomic<bool> applying_flag{false};  // mirrors `applying` for poll's lock-free check
  uint64_t flushes = 0;
  bool image_written = false;
};

namespace {

// Per-request contexts, in the request's driver area.
struct FlushCtx {
  uint64_t cover = 0;  // the flush makes every entry below this seq durable
};
struct ForwardCtx : BaseOp {
  BdevIo* io = nullptr;
};

class CrashQueue;

// A read that overlaps the overlay: the overlay parts were copied at submit; these read the
// gaps from the base.
struct GapRead;
struct SplitRead {
  BdevIo* io = nullptr;
  CrashState* state = nullptr;
  size_t remaining = 0;
  Errc status = Errc::ok;
  std::vector<GapRead> gaps;
};
struct GapRead : BaseOp {
  SplitRead* read = nullptr;
  std::vector<iovec> segments;
};

struct ApplyOp : BaseOp {
  iovec seg{};
};

class CrashQueue final : public StackedQueue {
 public:
  CrashQueue(StackedBdev& owner, BdevChannel* base_ch, CrashState& state)
      : StackedQueue(owner, base_ch), state_(state), base_flushes_(owner.base_desc().geometry().supports(IoType::flush)) {}

  ~CrashQueue() override {
    if (!pending_flushes_.empty() || applying_here_)
      log::error("crashsim {}: channel destroyed with a flush in progress", state_.name);
  }

  void submit(BdevIo* io) override {
    switch (io->type) {
      case IoType::read: submit_read(io); break;
      case IoType::write:
      case IoType::write_zeroes:
      case IoType::unmap: submit_write(io); break;
      case IoType::flush: submit_flush(io); break;
      case IoType::reset: io->channel->complete(io, Errc::ok); break;
    }
  }

 protected:
  int on_poll() override {
    if (pending_flushes_.empty() || applying_here_) return 0;
    // Another thread's flush is being applied: look again on a later poll.
    if (state_.applying_flag.load(std::memory_order_acquire) && !state_.off_flag.load(std::memory_order_acquire))
      return 0;
    return try_apply();
  }

 private:
  // ---- reads ----

  struct Gap {
    uint64_t start, count;
  };

  void submit_read(BdevIo* io) {
    const uint64_t s = io->offset_blocks;
    const size_t bs = state_.block_size;
    std::vector<Gap> gaps;
    bool cached = false;
    {
      std::lock_guard lock(state_.mu);
      if (state_.off) {
        io->channel->complete(io, Errc::aborted);
        return;
      }
      cached = copy_cached(io, gaps);
    }
    if (!cached) {  // nothing of it is cached: read the base straight into the caller's buffer
      auto* ctx = new (io->driver) ForwardCtx();
      ctx->io = io;
      forward(io, ctx, &CrashQueue::forward_done);
      return;
    }
    if (gaps.empty()) {
      io->channel->complete(io, Errc::ok);
      return;
    }
    auto* read = new SplitRead();
    read->io = io;
    read->state = &state_;
    read->remaining = gaps.size();
    read->gaps.resize(gaps.size());  // never resized again: the ops' addresses stay put
    for (size_t i = 0; i < gaps.size(); ++i) {
      GapRead& g = read->gaps[i];
      g.read = read;
      iov_slice(io->iovs, io->iovcnt, (gaps[i].start - s) * bs, gaps[i].count * bs, g.segments);
      g.type = IoType::read;
      g.iov = g.segments.data();
      g.iovcnt = static_cast<int>(g.segments.size());
      g.offset_blocks = gaps[i].start;
      g.num_blocks = gaps[i].count;
      g.done = &CrashQueue::gap_done;
    }
    for (auto& g : read->gaps) send(&g);
  }

  // Copies the cached parts of the read's range into its buffer (the newest write per block)
  // and lists the uncached gaps. False if no part is cached. Runs with mu held.
  bool copy_cached(BdevIo* io, std::vector<Gap>& gaps) {
    const uint64_t s = io->offset_blocks, end = s + io->num_blocks;
    const size_t bs = state_.block_size;
    auto& ext = state_.extents;
    auto it = ext.upper_bound(s);
    if (it != ext.begin() && std::prev(it)->second.end > s) --it;
    if (it == ext.end() || it->first >= end) return false;
    uint64_t pos = s;
    for (; it != ext.end() && it->first < end; ++it) {
      const uint64_t a = std::max(it->first, s), b = std::min(it->second.end, end);
      if (a > pos) gaps.push_back({pos, a - pos});
      const CrashEntry* e = it->second.entry;
      if (e->data) {
        iov_copy_to(io->iovs, io->iovcnt, (a - s) * bs, e->data.get() + (a - e->offset_blocks) * bs, (b - a) * bs);
      } else {
        iov_zero(io->iovs, io->iovcnt, (a - s) * bs, (b - a) * bs);
      }
      pos = b;
    }
    if (pos < end) gaps.push_back({pos, end - pos});
    return true;
  }

  static void gap_done(BaseOp* op, Errc status) {
    SplitRead* read = static_cast<GapRead*>(op)->read;
    if (status != Errc::ok && read->status == Errc::ok) read->status = status;
    if (--read->remaining > 0) return;
    Errc result = read->state->off_flag.load(std::memory_order_acquire) ? Errc::aborted : read->status;
    read->io->channel->complete(read->io, result);
    delete read;
  }

  void forward_done_impl(ForwardCtx* ctx, Errc status) {
    ctx->io->channel->complete(ctx->io, state_.off_flag.load(std::memory_order_acquire) ? Errc::aborted : status);
  }
  static void forward_done(BaseOp* op, Errc status) {
    auto* ctx = static_cast<ForwardCtx*>(op);
    static_cast<CrashQueue*>(op->queue)->forward_done_impl(ctx, status);
  }

  // ---- writes ----

  void submit_write(BdevIo* io) {
    auto entry = std::make_unique<CrashEntry>();
    entry->type = io->type;
    entry->offset_blocks = io->offset_blocks;
    entry->num_blocks = io->num_blocks;
    if (io->type == IoType::write) {
      const size_t bytes = io->num_blocks * state_.block_size;
      const size_t align = std::max<size_t>(state_.buf_align, 64);
      void* mem = std::aligned_alloc(align, (bytes + align - 1) / align * align);
      if (mem == nullptr) {
        io->channel->complete(io, Errc::no_space);
        return;
      }
      entry->data.reset(static_cast<char*>(mem));
      iov_copy_from(io->iovs, io->iovcnt, 0, entry->data.get(), bytes);
    }
    Errc result = Errc::ok;
    {
      std::lock_guard lock(state_.mu);
      if (state_.admit_boundary()) {
        state_.insert(std::move(entry));
      } else {
        result = Errc::aborted;
      }
    }
    io->channel->complete(io, result);
  }

  // ---- flushes ----

  void submit_flush(BdevIo* io) {
    {
      std::lock_guard lock(state_.mu);
      if (!state_.admit_boundary()) {
        io->channel->complete(io, Errc::aborted);
        return;
      }
      if (state_.entries.empty()) {  // nothing is volatile
        ++state_.flushes;
        io->channel->complete(io, Errc::ok);
        return;
      }
      new (io->driver) FlushCtx{state_.next_seq};
    }
    pending_flushes_.push_back(io);
    try_apply();
  }

  static uint64_t cover_of(BdevIo* io) { return io->driver_ctx<FlushCtx>()->cover; }

  // Completes the pending flushes whose cover is at most `upto` with `status` (all of them
  // when `all`). Runs with mu held; returns how many it completed.
  int complete_flushes(uint64_t upto, Errc status, bool all) {
    int n = 0;
    auto list = pending_flushes_.take_all();
    while (BdevIo* io = list.pop_front()) {
      if (all || cover_of(io) <= upto) {
        if (status == Errc::ok) ++state_.flushes;
        io->channel->complete(io, status);
        ++n;
      } else {
        pending_flushes_.push_back(io);
      }
    }
    return n;
  }

  // Completes what is already durable and, if no flush is being applied anywhere, starts
  // applying this channel's pending flushes.
  int try_apply() {
    if (pending_flushes_.empty() || applying_here_) return 0;
    int events = 0;
    {
      std::lock_guard lock(state_.mu);
      if (state_.off) return complete_flushes(0, Errc::aborted, true);
      events += complete_flushes(state_.durable_frontier(), Errc::ok, false);
      if (pending_flushes_.empty() || state_.applying) return events;
      uint64_t target = 0;
      for (BdevIo* io = pending_flushes_.front(); io != nullptr; io = io->next) target = std::max(target, cover_of(io));
      state_.applying = true;
      state_.applying_flag.store(true, std::memory_order_release);
      state_.apply_cursor = state_.durable_frontier();
      state_.apply_target = target;
      applying_here_ = true;
    }
    step();
    return events + 1;
  }

  // Sends the next entry of the flush being applied to the base, or, after the last, the
  // base flush.
  void step() {
    CrashEntry* e = nullptr;
    bool flush_base = false;
    {
      std::lock_guard lock(state_.mu);
      if (state_.off) {
        // The apply stops here; finish_apply() reports the flushes as aborted.
      } else if (state_.apply_cursor < state_.apply_target) {
        e = state_.entries[state_.apply_cursor - state_.entries.front()->seq].get();
        ++state_.apply_cursor;
        state_.destaged_upto = std::max(state_.destaged_upto, state_.apply_cursor);
      } else {
        // Without a flush below us the writes are durable once written.
        flush_base = base_flushes_;
      }
    }
    if (e != nullptr) {
      // The entry stays in the overlay (and alive) until this apply finishes.
      apply_op_.type = e->type;
      apply_op_.offset_blocks = e->offset_blocks;
      apply_op_.num_blocks = e->num_blocks;
      if (e->data) {
        apply_op_.seg = {e->data.get(), e->num_blocks * state_.block_size};
        apply_op_.iov = &apply_op_.seg;
        apply_op_.iovcnt = 1;
      } else {
        apply_op_.iov = nullptr;
        apply_op_.iovcnt = 0;
      }
      apply_op_.done = &CrashQueue::apply_write_done;
      send(&apply_op_);
    } else if (flush_base) {
      apply_op_.type = IoType::flush;
      apply_op_.iov = nullptr;
      apply_op_.iovcnt = 0;
      apply_op_.offset_blocks = 0;
      apply_op_.num_blocks = 0;
      apply_op_.done = &CrashQueue::apply_flush_done;
      send(&apply_op_);
    } else {
      finish_apply(Errc::ok);
    }
  }

  static void apply_write_done(BaseOp* op, Errc status) {
    auto* q = static_cast<CrashQueue*>(op->queue);
    if (status != Errc::ok) {
      q->finish_apply(status);
    } else {
      q->step();
    }
  }
  static void apply_flush_done(BaseOp* op, Errc status) { static_cast<CrashQueue*>(op->queue)->finish_apply(status); }

  void finish_apply(Errc status) {
    {
      std::lock_guard lock(state_.mu);
      state_.applying = false;
      state_.applying_flag.store(false, std::memory_order_release);
      applying_here_ = false;
      if (state_.off) {
        complete_flushes(0, Errc::aborted, true);
      } else if (status == Errc::ok) {
        state_.retire_durable(state_.apply_target);
        complete_flushes(state_.apply_target, Errc::ok, false);
      } else {
        // The base failed: the writes stay cached (a later flush retries them).
        complete_flushes(state_.apply_target, status, false);
      }
    }
    try_apply();  // flushes submitted meanwhile on this channel
  }

  CrashState& state_;
  const bool base_flushes_;
  IntrusiveQueue<BdevIo> pending_flushes_;  // linked through BdevIo::next while here
  bool applying_here_ = false;              // this channel is applying a flush
  ApplyOp apply_op_;
};

class CrashBdev final : public StackedBdev {
 public:
  CrashBdev(std::string name, Base base, bool owned_base)
      : StackedBdev(name, "crashsim", std::move(base), io_bit(IoType::flush)),
        state_(std::make_shared<CrashState>()),
        owned_base_(owned_base) {
    state_->name = std::move(name);
    state_->base_name = base_name();
    state_->block_size = geometry().block_size;
    state_->buf_align = geometry().buf_align;
  }

  ~CrashBdev() override { write_image(); }

  Result<std::unique_ptr<BackendQueue>> create_queue() override {
    auto ch = get_base_channel();
    if (!ch.ok()) return ch.status();
    return std::unique_ptr<BackendQueue>(new CrashQueue(*this, ch.value(), *state_));
  }

  const std::shared_ptr<CrashState>& state() const { return state_; }

 private:
  // Writes the post-crash image (or, without a cut, the whole overlay) to the base. Every
  // channel is gone by now, so nothing races with it.
  void write_image() {
    std::vector<CrashPlanItem> plan;
    {
      std::lock_guard lock(state_->mu);
      if (state_->image_written) return;
      if (!state_->off) {  // a clean shutdown keeps everything
        for (auto& e : state_->entries) state_->plan.push_back({e.get(), 0, e->num_blocks});
        for (auto& e : state_->entries) state_->retired.push_back(std::move(e));
        state_->entries.clear();
        state_->extents.clear();
        state_->pending_bytes = 0;
      }
      plan = state_->plan;
    }
    if (plan.empty()) {
      std::lock_guard lock(state_->mu);
      state_->image_written = true;
      return;
    }
    if (base_removed()) {
      if (owned_base_) {
        log::debug("crashsim {}: base {} is gone; image not written", name(), base_name());
      } else {
        log::warn("crashsim {}: base {} was removed; the post-crash image was not written", name(), base_name());
      }
      return;
    }
    auto ch = get_base_channel();
    if (!ch.ok()) {
      log::error("crashsim {}: cannot write the post-crash image: {}", name(), ch.status().to_string());
      return;
    }
    SyncIo io{base_desc(), ch.value()};
    const size_t bs = geometry().block_size;
    Status st;
    for (const CrashPlanItem& p : plan) {
      const uint64_t off = p.entry->offset_blocks + p.first;
      switch (p.entry->type) {
        case IoType::write: st = io.write(p.entry->data.get() + p.first * bs, off, p.count); break;
        case IoType::write_zeroes: st = io.write_zeroes(off, p.count); break;
        default: st = io.unmap(off, p.count); break;
      }
      if (!st.ok()) break;
    }
    if (st.ok() && base_desc().geometry().supports(IoType::flush)) st = io.flush();
    put_base_channel(ch.value());
    if (!st.ok()) {
      log::error("crashsim {}: writing the post-crash image to {} failed: {}", name(), base_name(), st.to_string());
      return;
    }
    std::lock_guard lock(state_->mu);
    state_->image_written = true;
  }

  std::shared_ptr<CrashState> state_;
  bool owned_base_;
};

}  // namespace

Result<std::shared_ptr<Bdev>> make_crashsim_bdev(const SpecArgs& args) {
  SLUICE_RETURN_IF_ERROR(args.check_known({}));
  auto base = StackedBdev::create_base(args);
  if (!base.ok()) return base.status();
  return std::shared_ptr<Bdev>(new CrashBdev(args.name, std::move(base.value()), true));
}

// ---- CrashSim -----------------------------------------------------------------------------

Result<CrashSim> CrashSim::stack(std::string_view base_name, std::string_view name) {
  if (name.empty()) return Status(Errc::invalid_argument, "a crashsim bdev needs a name");
  auto base = StackedBdev::open_base(name, base_name);
  if (!base.ok()) return base.status();
  auto dev = std::shared_ptr<CrashBdev>(new CrashBdev(std::string(name), std::move(base.value()), false));
  SLUICE_RETURN_IF_ERROR(register_bdev(dev));
  return CrashSim(dev->state());
}

Result<CrashSim> CrashSim::find(std::string_view name) {
  auto dev = bdev::find(name);
  if (!dev) return Status(Errc::not_found, fmt::format("no bdev named {}", name));
  auto* cs = dynamic_cast<CrashBdev*>(dev.get());
  if (cs == nullptr) return Status(Errc::invalid_argument, fmt::format("bdev {} is not a crashsim bdev", name));
  return CrashSim(cs->state());
}

const std::string& CrashSim::name() const { return state_->name; }
const std::string& CrashSim::base_name() const { return state_->base_name; }

void CrashSim::set_seed(uint64_t seed) {
  std::lock_guard lock(state_->mu);
  state_->seed = seed;
}

Status CrashSim::set_outcomes(uint32_t mask) {
  if (mask == 0 || (mask & ~uint32_t{kCrashAny}) != 0)
    return Status(Errc::invalid_argument, fmt::format("crashsim: bad outcome mask {:#x}", mask));
  std::lock_guard lock(state_->mu);
  state_->outcomes = mask;
  return Status::Ok();
}

void CrashSim::cut_power() {
  std::lock_guard lock(state_->mu);
  state_->cut();
}

Status CrashSim::cut_power_at(uint64_t n) {
  std::lock_guard lock(state_->mu);
  if (n != 0 && n <= state_->boundaries)
    return Status(Errc::invalid_argument,
                  fmt::format("crashsim {}: boundary {} has passed ({} so far)", state_->name, n, state_->boundaries));
  state_->cut_at = n;
  return Status::Ok();
}

bool CrashSim::powered_off() const {
  std::lock_guard lock(state_->mu);
  return state_->off;
}

uint64_t CrashSim::boundaries() const {
  std::lock_guard lock(state_->mu);
  return state_->boundaries;
}

uint64_t CrashSim::pending_writes() const {
  std::lock_guard lock(state_->mu);
  return state_->entries.size();
}

uint64_t CrashSim::pending_bytes() const {
  std::lock_guard lock(state_->mu);
  return state_->pending_bytes;
}

CrashCounts CrashSim::counts() const {
  std::lock_guard lock(state_->mu);
  const CrashState& s = *state_;
  CrashCounts c;
  c.boundaries = s.boundaries;
  c.pending_writes = s.entries.size();
  c.pending_bytes = s.pending_bytes;
  c.flushes = s.flushes;
  c.flushed_writes = s.flushed_writes;
  c.powered_off = s.off;
  c.kept = s.kept;
  c.lost = s.lost;
  c.torn = s.torn;
  c.destaged = s.destaged;
  c.image_written = s.image_written;
  return c;
}

}  // namespace sluice::bdev
