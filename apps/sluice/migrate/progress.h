// The progress line of a copy on stderr ("files 12/40, 35.2 MiB/120 MiB, 210.3 MB/s"),
// redrawn in place at most a few times a second, only when asked (a tty or --progress).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace sluice::migrate {

class Progress {
 public:
  Progress(bool enabled, std::string verb, uint64_t total_files, uint64_t total_bytes);
  void update(uint64_t files, uint64_t bytes, bool force = false);
  void done();  // ends the line, if one was drawn
  double seconds() const;
  static double mb_per_s(uint64_t bytes, double seconds);

 private:
  bool enabled_;
  bool drawn_ = false;
  std::string verb_;
  uint64_t total_files_, total_bytes_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace sluice::migrate
