#include "migrate/progress.h"

#include <cstdio>

#include <fmt/format.h>

#include "base/size.h"

namespace sluice::migrate {

Progress::Progress(bool enabled, std::string verb, uint64_t total_files, uint64_t total_bytes)
    : enabled_(enabled),
      verb_(std::move(verb)),
      total_files_(total_files),
      total_bytes_(total_bytes),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

double Progress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::mb_per_s(uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0;
}

void Progress::update(uint64_t files, uint64_t bytes, bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_ < std::chrono::milliseconds(250)) return;
  last_ = now;
  fmt::print(stderr, "\r{}: files {}/{}, {}/{}, {:.1f} MB/s\x1b[K", verb_, files, total_files_, format_size(bytes),
             format_size(total_bytes_), mb_per_s(bytes, seconds()));
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::done() {
  if (drawn_) fmt::print(stderr, "\n");
  drawn_ = false;
}

}  // namespace sluice::migrate
