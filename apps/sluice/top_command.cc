// `sluice top`: a running daemon's reactors, devices and exports, refreshed every interval,
// like top and spdk_top; `--json` prints one interval's rates and exits.
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include <fmt/format.h>

#include "commands.h"
#include "perf/stop_signal.h"
#include "rpc/rpc.h"
#include "top/sample.h"

namespace sluice::cli {
namespace {

constexpr std::string_view kTopCmd = "top";

struct TopArgs {
  std::string socket = "/var/tmp/sluice.sock";
  double interval = 1.0;
  uint64_t iterations = 0;  // 0: until q or Ctrl-C
  std::string sort = "iops";
  bool json = false;
};

// The terminal in single-key mode (no echo, no line buffering) while `top` runs, restored
// however it ends.
class KeyboardMode {
 public:
  KeyboardMode() {
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0) return;
    termios raw = saved_;
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    active_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  ~KeyboardMode() {
    if (active_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  KeyboardMode(const KeyboardMode&) = delete;
  KeyboardMode& operator=(const KeyboardMode&) = delete;
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Result<top::Snapshot> take(const std::string& socket) {
  top::Snapshot s;
  s.seconds = now_seconds();
  auto get = [&](const char* method, bool optional) -> Result<rpc::Json> {
    auto r = rpc::call(socket, method, nullptr, 10000);
    if (!r.ok()) return r.status();
    if (r->contains("error")) {
      if (optional) return rpc::Json(nullptr);  // a daemon without that target
      return Status{Errc::io_error, fmt::format("{}: {}", method, (*r)["error"].value("message", "failed"))};
    }
    return (*r)["result"];
  };
  auto reactors = get("framework_get_reactors", false);
  if (!reactors.ok()) return reactors.status();
  auto iostat = get("bdev_get_iostat", false);
  if (!iostat.ok()) return iostat.status();
  auto bdevs = get("bdev_get_bdevs", false);
  if (!bdevs.ok()) return bdevs.status();
  auto exports = get("nbd_get_exports", true);
  if (!exports.ok()) return exports.status();
  s.reactors = std::move(*reactors);
  s.iostat = std::move(*iostat);
  s.bdevs = std::move(*bdevs);
  s.exports = std::move(*exports);
  return s;
}

std::optional<top::SortKey> sort_key(char c) {
  switch (c) {
    case 'i': return top::SortKey::iops;
    case 'm': return top::SortKey::mibps;
    case 'l': return top::SortKey::latency;
    case 'n': return top::SortKey::name;
    default: return std::nullopt;
  }
}

// Waits one interval; reads keys meanwhile. False when the user asked to quit.
bool wait_interval(double seconds, const KeyboardMode& keys, top::SortKey& sort) {
  const double end = now_seconds() + seconds;
  for (double left = seconds; left > 0; left = end - now_seconds()) {
    if (perf::stop_requested()) return false;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    const int wait_ms = static_cast<int>(std::min(left, 0.1) * 1000) + 1;
    if (keys.active() && ::poll(&p, 1, wait_ms) > 0) {
      char c = 0;
      if (::read(STDIN_FILENO, &c, 1) == 1) {
        if (c == 'q') return false;
        if (auto k = sort_key(c)) {
          sort = *k;
          return true;  // redraw at once in the new order
        }
      }
    } else if (!keys.active()) {
      ::poll(nullptr, 0, wait_ms);
    }
  }
  return true;
}

int run_top(const TopArgs& args) {
  top::SortKey sort = *sort_key(args.sort[0]);
  perf::StopSignalGuard stop_guard;
  auto before = take(args.socket);
  if (!before.ok()) return fail(kTopCmd, kExitFailure, before.status().message());
  KeyboardMode keys;
  const bool screen = isatty(STDOUT_FILENO) && !args.json;
  for (uint64_t i = 0; args.iterations == 0 || i < args.iterations; ++i) {
    if (!wait_interval(args.interval, keys, sort)) break;
    auto after = take(args.socket);
    if (!after.ok()) return fail(kTopCmd, kExitFailure, after.status().message());
    const top::View view = top::make_view(*before, *after, sort);
    if (args.json) {
      print_json(top::view_json(view));
      return kExitOk;
    }
    fmt::print("{}{}", screen ? "\033[H\033[2J" : (i > 0 ? "\n" : ""), top::render(view, sort, args.socket));
    std::fflush(stdout);
    before = std::move(after);
  }
  return perf::stop_requested() ? kExitInterrupted : kExitOk;
}

}  // namespace

Subcommand add_top(CLI::App& app) {
  auto args = std::make_shared<TopArgs>();
  CLI::App* cmd = app.add_subcommand("top", "Watch a running `sluice serve`: reactors, devices, exports");
  cmd->footer(
      "Rates over each interval: reactor busy % (loop iterations that found work) and sleeps, device IOPS,\n"
      "MiB/s, average latency and queue depth (IOPS x latency), rate limits, NBD exports and their\n"
      "connections. Keys: i, m, l, n sort devices by IOPS, MiB/s, latency, name; q quits.");
  cmd->add_option("-s,--server", args->socket, "The daemon's RPC socket")->capture_default_str();
  cmd->add_option("-d,--interval", args->interval, "Seconds between refreshes")
      ->check(CLI::Range(0.05, 3600.0))
      ->capture_default_str();
  cmd->add_option("-n,--iterations", args->iterations, "Refreshes before exiting (0: until q or Ctrl-C)")
      ->capture_default_str();
  cmd->add_option("--sort", args->sort, "Sort devices by")
      ->check(CLI::IsMember({"iops", "mibps", "latency", "name"}))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Print one interval's rates as JSON and exit");
  return {cmd, [args] { return run_top(*args); }};
}

}  // namespace sluice::cli
