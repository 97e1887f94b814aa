#include "base/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace sluice::log {
namespace {

Level parse_env() {
  const char* v = std::getenv("SLUICE_LOG");
  if (v == nullptr) return Level::notice;
  std::string_view s(v);
  if (s == "debug") return Level::debug;
  if (s == "info") return Level::info;
  if (s == "warn") return Level::warn;
  if (s == "error") return Level::error;
  return Level::notice;
}

std::atomic<int>& level_ref() {
  static std::atomic<int> level{static_cast<int>(parse_env())};
  return level;
}

const char* prefix(Level level) {
  switch (level) {
    case Level::debug: return "sluice: debug: ";
    case Level::info: return "sluice: ";
    case Level::notice: return "sluice: ";
    case Level::warn: return "sluice: warning: ";
    case Level::error: return "sluice: error: ";
  }
  return "sluice: ";
}

}  // namespace

Level threshold() { return static_cast<Level>(level_ref().load(std::memory_order_relaxed)); }
void set_threshold(Level level) { level_ref().store(static_cast<int>(level)); }

void write(Level level, std::string_view line) {
  // One fwrite per line keeps lines from different threads whole.
  std::string out = prefix(level);
  out.append(line);
  out.push_back('\n');
  std::fwrite(out.data(), 1, out.size(), stderr);
}

}  // namespace sluice::log
