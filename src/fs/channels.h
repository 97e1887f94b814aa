// Per-thread blobstore channels of a mounted SluiceFS, and the waiting helpers of its data
// path. Each calling thread gets its own channel (Blobstore::get_channel) on first use and
// keeps it until the thread exits or the file system is unmounted; it submits and then
// polls that channel itself while it waits (docs/design.md, rules of the data path).
#pragma once

#include <atomic>
#include <cstdint>

#include "base/status.h"
#include "blob/blob.h"

namespace sluice::fs {

// One mounted store as the channel cache sees it.
class ChannelSource {
 public:
  explicit ChannelSource(blob::Blobstore& bs);
  ~ChannelSource();  // calls retire() if not done
  // The calling thread's channel, made on first use.
  Result<blob::BlobChannel*> get();
  // Puts back the calling thread's channel; other threads' channels are put back when those
  // threads exit, unless the source is gone by then (they are then leaked, and logged).
  // Returns how many other threads still held one.
  uint64_t retire();
  blob::Blobstore& store() { return bs_; }

 private:
  friend struct ThreadChannels;
  blob::Blobstore& bs_;
  const uint64_t serial_;
  std::atomic<uint64_t> live_{0};
  bool retired_ = false;
};

// A countdown of requests: each completion decrements, the first error is kept.
struct IoWait {
  uint32_t pending = 0;
  Errc status = Errc::ok;
  static void done(void* arg, Errc st) {
    auto* w = static_cast<IoWait*>(arg);
    if (st != Errc::ok && w->status == Errc::ok) w->status = st;
    --w->pending;
  }
};

// Submits through `submit(cb, arg)`, polling the channel and retrying while it is busy.
template <typename Submit>
Status submit_io(blob::Blobstore& bs, blob::BlobChannel* ch, IoWait& w, Submit&& submit) {
  for (uint64_t spins = 0;; ++spins) {
    Status st = submit(&IoWait::done, &w);
    if (st.ok()) {
      ++w.pending;
      return st;
    }
    if (st.code() != Errc::busy || spins > (1u << 26)) return st;
    bs.poll(ch);
  }
}

// Polls until every request of `w` completed (bounded: Errc::aborted after 120 s).
Status wait_io(blob::Blobstore& bs, blob::BlobChannel* ch, IoWait& w);

}  // namespace sluice::fs
