// Leveled logging to stderr, one line per call. Never used on the per-I/O path.
#pragma once

#include <string_view>

#include <fmt/format.h>

namespace sluice::log {

enum class Level { debug = 0, info, notice, warn, error };

// The threshold comes from SLUICE_LOG (debug|info|notice|warn|error), default notice.
Level threshold();
void set_threshold(Level level);
void write(Level level, std::string_view line);

template <typename... Args>
void emit(Level level, fmt::format_string<Args...> f, Args&&... args) {
  if (level < threshold()) return;
  write(level, fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... a) { emit(Level::debug, f, std::forward<Args>(a)...); }
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... a) { emit(Level::info, f, std::forward<Args>(a)...); }
template <typename... Args>
void notice(fmt::format_string<Args...> f, Args&&... a) { emit(Level::notice, f, std::forward<Args>(a)...); }
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... a) { emit(Level::warn, f, std::forward<Args>(a)...); }
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... a) { emit(Level::error, f, std::forward<Args>(a)...); }

}  // namespace sluice::log
