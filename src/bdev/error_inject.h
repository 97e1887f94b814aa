// The error bdev: fault injection on top of any bdev (like SPDK's bdev_error).
//
//   bdev::create("malloc:64M", "disk");
//   auto inj = bdev::ErrorInjector::stack("disk", "faulty");    // registers "faulty"
//   inj->set_rule(bdev::ErrorRule::nth(bdev::io_bit(bdev::IoType::write), 3));
//   ... the 3rd write to "faulty" completes with Errc::io_error; everything else passes ...
//   inj->set_dead();   // the device "dies": every request fails from now on
//
// The spec "error:SPEC" (e.g. "error:malloc:64M?bs=4096") builds the base from the nested
// spec, registers it as "<name>_base" and injects nothing until a rule is set; get its
// control handle with ErrorInjector::find(name). The error bdev has the base's geometry and
// claims the base exclusively.
//
// Which requests fail: a request "matches" the rule when its type is in `types`. Of the
// matching requests, the first `skip` pass; after that each one is a candidate, and a
// candidate fails with probability `probability` (decided by a deterministic generator
// seeded with `seed`: the k-th candidate since set_rule() draws the k-th number), until
// `count` requests have failed. A failing request completes with `status` without reaching
// the base, unless `after_io` is set: then it is sent to the base first and its completion
// is replaced by `status` (the data may well have landed, as when a device fails after the
// write reached the media). Requests the generic layer splits are matched piece by piece.
//
// Thread safety: the control calls may run on any thread while channels on other threads do
// I/O. The data path reads the configuration through atomics and takes no lock; a request
// racing with set_rule() sees either the old rule or the new one.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

#include "bdev/bdev.h"

namespace sluice::bdev {

inline constexpr uint32_t kAllIoTypes = (1u << kIoTypes) - 1;

struct ErrorRule {
  static constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

  uint32_t types = kAllIoTypes;  // io_bit() mask of the operations the rule applies to
  Errc status = Errc::io_error;  // what a failed request completes with (not Errc::ok)
  uint64_t skip = 0;             // matching requests let through before failures start
  uint64_t count = kUnlimited;   // failures to inject, then the rule is spent
  double probability = 1.0;      // each candidate fails with this probability, in [0, 1]
  uint64_t seed = 0;             // for probability < 1
  bool after_io = false;         // run the request on the base, then report `status`

  // Fails the n-th (1-based) matching request, once.
  static ErrorRule nth(uint32_t types, uint64_t n, Errc status = Errc::io_error);
  // Fails the next k matching requests.
  static ErrorRule next(uint32_t types, uint64_t k, Errc status = Errc::io_error);
  // Fails each matching request with probability p, reproducibly for a given seed.
  static ErrorRule random(uint32_t types, double p, uint64_t seed, Errc status = Errc::io_error);
};

struct ErrorCounts {
  uint64_t injected = 0;                      // requests failed by the rule or by dead mode
  std::array<uint64_t, kIoTypes> by_type{};   // the same, per IoType
  uint64_t rule_left = 0;                     // failures the current rule may still inject
};

struct ErrorState;  // internal, shared by the device and its handles

// A control handle. Copies share the device's state; a handle stays valid (and its counters
// readable) after the device is gone.
class ErrorInjector {
 public:
  // Stacks an error bdev named `name` on the registered bdev `base_name` (claimed
  // exclusively) and registers it.
  static Result<ErrorInjector> stack(std::string_view base_name, std::string_view name);
  // The handle of a registered error bdev (for instance one made from a spec).
  static Result<ErrorInjector> find(std::string_view name);

  const std::string& name() const;

  // Replaces the rule; the rule's skip, count and random draws start afresh.
  Status set_rule(const ErrorRule& rule);
  // No more injection by rule (dead mode is separate).
  void clear_rule();
  // "Device dead": every request of every type fails with `status` until revive().
  Status set_dead(Errc status = Errc::io_error);
  void revive();
  bool dead() const;

  ErrorCounts counts() const;
  void reset_counts();

 private:
  explicit ErrorInjector(std::shared_ptr<ErrorState> state) : state_(std::move(state)) {}
  std::shared_ptr<ErrorState> state_;
};

}  // namespace sluice::bdev
