// How long a virtqueue is worth polling after its last request (adaptive polling, after
// SPDK's and QEMU's): the guest's recent gap between requests, as a moving average, decides.
// A guest that sends again within a few microseconds is caught by polling sooner than a kick
// could wake the reactor; one that takes longer (a guest under emulation, a queue at QD1
// behind a slow application) would only cost the reactor a busy core, so its queue asks for
// no polling at all and the reactor sleeps on the kick at once.
//
// One queue's, on its reactor only.
#pragma once

#include <algorithm>
#include <cstdint>

namespace sluice::vhost {

class PollWindow {
 public:
  // Polling for about this many gaps catches most next requests of a steady guest.
  static constexpr uint64_t kGapsPolled = 4;

  explicit PollWindow(uint64_t max_ns) : max_ns_(max_ns) {}

  // New requests were found in the ring at `now_ns` (one batch counts once: the guest's
  // batches are what the reactor waits between).
  void arrived(uint64_t now_ns) {
    if (last_ns_ != 0) {
      // Capped, so that after a pause a few quick requests bring polling back.
      const uint64_t gap = std::min(now_ns - last_ns_, 2 * max_ns_);
      gap_ns_ = known_ ? gap_ns_ - gap_ns_ / 8 + gap / 8 : gap;
      known_ = true;
    }
    last_ns_ = now_ns;
  }

  // How long to poll once idle: the most allowed until the guest's pace is known; nothing
  // for a guest slower than that; else a few of its gaps.
  uint64_t spin_ns() const {
    if (!known_) return max_ns_;
    if (gap_ns_ > max_ns_) return 0;
    return std::min(kGapsPolled * gap_ns_, max_ns_);
  }

  uint64_t gap_ns() const { return gap_ns_; }

 private:
  uint64_t max_ns_;
  uint64_t last_ns_ = 0;
  uint64_t gap_ns_ = 0;
  bool known_ = false;
};

}  // namespace sluice::vhost
