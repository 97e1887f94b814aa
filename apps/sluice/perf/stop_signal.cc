#include "perf/stop_signal.h"

#include <csignal>

namespace sluice::perf {

namespace detail {
std::atomic<bool> g_stop_requested{false};
}

namespace {

struct sigaction g_old_int, g_old_term;

void on_signal(int signo) {
  detail::g_stop_requested.store(true, std::memory_order_relaxed);
  // The next one gets the default action: a stuck run can still be killed with Ctrl-C.
  std::signal(signo, SIG_DFL);
}

}  // namespace

StopSignalGuard::StopSignalGuard() {
  detail::g_stop_requested.store(false, std::memory_order_relaxed);
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopSignalGuard::~StopSignalGuard() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

}  // namespace sluice::perf
