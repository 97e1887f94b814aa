#include "thread/cpuset.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include <fmt/format.h>

#include "thread/thread.h"

namespace sluice::thread {
namespace {

Status bad_list(std::string_view list, std::string_view why) {
  return Status(Errc::invalid_argument, fmt::format("invalid core list \"{}\": {}", list, why));
}

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// A core number: decimal digits only (no sign), below CPU_SETSIZE so it fits a cpu_set_t.
bool parse_core(std::string_view s, int& out) {
  s = trim(s);
  if (s.empty() || s.size() > 5) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v >= CPU_SETSIZE) return false;
  out = v;
  return true;
}

}  // namespace

Result<std::vector<int>> parse_core_list(std::string_view list) {
  std::string_view s = trim(list);
  if (!s.empty() && s.front() == '[') {
    if (s.back() != ']') return bad_list(list, "'[' without a closing ']'");
    s = trim(s.substr(1, s.size() - 2));
  } else if (!s.empty() && s.back() == ']') {
    return bad_list(list, "']' without an opening '['");
  }
  if (s.empty()) return bad_list(list, "no cores listed");

  std::vector<int> cores;
  while (true) {
    size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    size_t dash = item.find('-');
    int lo, hi;
    if (dash == std::string_view::npos) {
      if (!parse_core(item, lo))
        return bad_list(list, fmt::format("\"{}\" is not a core number (0-{})", trim(item), CPU_SETSIZE - 1));
      hi = lo;
    } else {
      if (!parse_core(item.substr(0, dash), lo) || !parse_core(item.substr(dash + 1), hi))
        return bad_list(list, fmt::format("\"{}\" is not a range of core numbers like 0-3", trim(item)));
      if (hi < lo) return bad_list(list, fmt::format("range \"{}\" runs backwards", trim(item)));
    }
    for (int c = lo; c <= hi; ++c) {
      if (std::find(cores.begin(), cores.end(), c) != cores.end())
        return bad_list(list, fmt::format("core {} is listed twice", c));
      cores.push_back(c);
    }
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return cores;
}

Status pin_current_thread(int core) {
  if (core < 0 || core >= CPU_SETSIZE) return Status(Errc::invalid_argument, fmt::format("no core {}", core));
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0) return errno_status(rc, fmt::format("pin thread to core {}", core));
  return Status::Ok();
}

}  // namespace sluice::thread
