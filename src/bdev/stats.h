// Per-channel and per-device I/O statistics (docs/design.md rule 6).
#pragma once

#include <array>
#include <cstdint>

#include "base/counter.h"
#include "base/histogram.h"

namespace sluice::bdev {

struct OpStats {
  Counter ops;      // completed requests (as submitted, before splitting)
  Counter bytes;    // payload bytes of completed requests
  Counter errors;   // requests that completed with a failure status
  Histogram latency_ticks;  // submit-to-completion, in clock::ticks()

  void merge(const OpStats& o) {
    ops.add(o.ops.get());
    bytes.add(o.bytes.get());
    errors.add(o.errors.get());
    latency_ticks.merge(o.latency_ticks);
  }
};

struct IoStats {
  std::array<OpStats, 6> by_type;  // indexed by IoType
  Counter splits;                  // requests split into children
  Counter busy;                    // submissions refused because the channel was full
  Counter throttled;               // requests that waited for a rate limit (qos.h)
  Counter bounced;                 // requests whose buffers missed buf_align: copied through a bounce buffer

  void merge(const IoStats& o) {
    for (size_t i = 0; i < by_type.size(); ++i) by_type[i].merge(o.by_type[i]);
    splits.add(o.splits.get());
    busy.add(o.busy.get());
    throttled.add(o.throttled.get());
    bounced.add(o.bounced.get());
  }
};

}  // namespace sluice::bdev
