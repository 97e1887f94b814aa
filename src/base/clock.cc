#include "base/clock.h"

#include <thread>

namespace sluice::clock {

double ticks_per_second() {
  static const double rate = [] {
    uint64_t ns0 = now_ns(), t0 = ticks();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    uint64_t ns1 = now_ns(), t1 = ticks();
    return static_cast<double>(t1 - t0) * 1e9 / static_cast<double>(ns1 - ns0);
  }();
  return rate;
}

}  // namespace sluice::clock
