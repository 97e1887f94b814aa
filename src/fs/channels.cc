#include "fs/channels.h"

#include <sched.h>

#include <mutex>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/log.h"
#include "thread/io_channel.h"

namespace sluice::fs {
namespace {

// Sources alive, by serial: a thread that exits puts its channels back to those.
std::mutex g_mu;
std::unordered_map<uint64_t, ChannelSource*> g_sources;
std::atomic<uint64_t> g_next_serial{1};
// Stores of retired sources whose channels other threads still held: the unmount keeps each
// store for the life of the process, so those threads put back to it when they exit.
std::unordered_map<uint64_t, blob::Blobstore*> g_retired;

}  // namespace

struct ThreadChannels {
  struct Ref {
    uint64_t serial;
    blob::BlobChannel* ch;
  };
  std::vector<Ref> refs;
  ~ThreadChannels();
};

ThreadChannels::~ThreadChannels() {
  {
    std::lock_guard lock(g_mu);
    for (auto& r : refs) {
      if (auto it = g_sources.find(r.serial); it != g_sources.end()) {
        Status st = it->second->bs_.put_channel(r.ch);
        if (!st.ok()) log::warn("sluicefs: thread exit: {}", st.to_string());
        --it->second->live_;
      } else if (auto kept = g_retired.find(r.serial); kept != g_retired.end()) {
        // Unmounted meanwhile: the store is unloaded, and kept for us (blob.h, unload()).
        Status st = kept->second->put_channel(r.ch);
        if (!st.ok()) log::warn("sluicefs: thread exit after unmount: {}", st.to_string());
      }
    }
  }
  refs.clear();
}

namespace {
// Set on the thread's first channel. The holder is made after the blobstore's own per-thread
// state (by the first get_channel), so it is destroyed before it and can still put back.
thread_local std::vector<ThreadChannels::Ref>* t_refs = nullptr;

std::vector<ThreadChannels::Ref>& thread_refs() {
  thread_local ThreadChannels holder;
  t_refs = &holder.refs;
  return holder.refs;
}
}  // namespace

ChannelSource::ChannelSource(blob::Blobstore& bs) : bs_(bs), serial_(g_next_serial.fetch_add(1)) {
  std::lock_guard lock(g_mu);
  g_sources[serial_] = this;
}

ChannelSource::~ChannelSource() { (void)retire(); }

Result<blob::BlobChannel*> ChannelSource::get() {
  if (t_refs != nullptr) {
    for (auto& r : *t_refs)
      if (r.serial == serial_) return r.ch;
  }
  auto ch = bs_.get_channel();
  if (!ch.ok()) return ch.status();
  thread_refs().push_back({serial_, *ch});
  ++live_;
  return *ch;
}

uint64_t ChannelSource::retire() {
  std::lock_guard lock(g_mu);
  if (retired_) return 0;
  retired_ = true;
  static std::vector<ThreadChannels::Ref> none;
  auto& refs = t_refs ? *t_refs : none;
  for (size_t i = 0; i < refs.size(); ++i) {
    if (refs[i].serial != serial_) continue;
    Status st = bs_.put_channel(refs[i].ch);
    if (!st.ok()) log::warn("sluicefs: unmount: {}", st.to_string());
    --live_;
    refs.erase(refs.begin() + static_cast<long>(i));
    break;
  }
  g_sources.erase(serial_);
  if (live_.load() > 0) g_retired[serial_] = &bs_;
  return live_.load();
}

// Waiting sleeps instead of spinning: with RocksDB's threads on few cores, a spinning waiter
// takes the CPU that the kernel's side of the device (loop and filesystem workers, the block
// layer) needs to complete the very I/O it waits for.
// - A thread whose only I/O in flight is on an io_uring channel goes straight to the kernel:
//   one io_uring_enter submits the request and waits for it, as one pread would. Polling
//   first would only add enters (with deferred task work, an io_uring completion is
//   collected by entering the kernel anyway).
// - Otherwise it polls for a few microseconds, then sleeps on the thread's channels (uring
//   and aio wake it through an eventfd).
// Each armed sleep is short and bounded, so work that no descriptor signals (a request the
// blob layer deferred until another thread acts) is still polled again soon. The in-kernel
// wait ends with the completion of a request the kernel holds, so its bound is long: a
// timer that expires before the scheduler's next tick is programmed into the clock-event
// device when the wait starts and again when it is cancelled, and in a virtual machine each
// of those is an exit. With a 500 us bound that cost db_bench's direct readrandom on a loop
// device 15% of its reads (12.3K against 14.6K reads/s, ext4 15.2-16.3K). Devices that cannot
// wake us (malloc, userspace NVMe, stacked virtual bdevs) keep being polled, yielding now and
// then.
Status wait_io(blob::Blobstore& bs, blob::BlobChannel* ch, IoWait& w) {
  constexpr uint64_t kSpinNs = 5'000;
  constexpr uint64_t kSleepCapNs = 500'000;
  constexpr uint64_t kKernelWaitCapNs = 100'000'000;
  constexpr uint64_t kTimeoutNs = 120'000'000'000ull;
  const uint64_t start = clock::now_ns();
  for (uint32_t idle = 0; w.pending > 0;) {
    const bool waited = thread::wait_in_kernel_on_thread_channels(kKernelWaitCapNs);
    if (bs.poll(ch) > 0) {
      idle = 0;
      continue;
    }
    if (w.pending == 0) break;
    const uint64_t now = clock::now_ns();
    if (now - start > kTimeoutNs) return Status(Errc::aborted, "sluicefs: I/O did not complete within 120 s");
    if (waited || now - start < kSpinNs) continue;
    // The kernel wait was just tried above: only the armed sleep is left.
    if (!thread::sleep_armed_on_thread_channels(kSleepCapNs) && (++idle & 63) == 0) sched_yield();
  }
  if (w.status != Errc::ok) return Status(w.status, fmt::format("sluicefs: device I/O failed: {}", errc_name(w.status)));
  return Status::Ok();
}

}  // namespace sluice::fs
