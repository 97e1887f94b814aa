// Not a test (no assertion, not in ctest): the append(100 B)+sync rate of one and of two
// threads on a freshly formatted SluiceFS, each thread on its own file, so a run shows
// whether the data path scales with threads (docs/design.md: no lock shared between files).
//
//   fs_sync_rate [DEVICE_SPEC = malloc:256M] [seconds per run = 1]
//
// A file-backed spec (uring:PATH) measures the device too; malloc measures the software path.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "bdev/bdev.h"
#include "fs/fs.h"

namespace {

using namespace sluice;

double rate(fs::FileSystem& fs, int threads, double seconds) {
  std::atomic<uint64_t> ops{0};
  std::vector<std::thread> ts;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      auto f = fs.open(fmt::format("/rate{}_{}", threads, t), {.write = true, .create = true});
      if (!f.ok()) {
        fmt::print(stderr, "fs_sync_rate: {}\n", f.status().to_string());
        return;
      }
      (void)(*f)->preallocate(1u << 20);
      (void)(*f)->sync();
      const std::string record(100, static_cast<char>('a' + t));
      while (std::chrono::steady_clock::now() < end) {
        if (!(*f)->append(record.data(), record.size()).ok() || !(*f)->sync().ok()) break;
        ++ops;
      }
      (void)(*f)->close();
    });
  }
  for (auto& th : ts) th.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return static_cast<double>(ops.load()) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string spec = argc > 1 ? argv[1] : "malloc:256M";
  const double seconds = argc > 2 ? std::atof(argv[2]) : 1.0;
  auto dev = bdev::create(spec, "bench0");
  if (!dev.ok()) {
    fmt::print(stderr, "fs_sync_rate: {}: {}\n", spec, dev.status().to_string());
    return 1;
  }
  fs::FormatOptions fo;
  fo.force = true;  // the bench's own scratch device
  if (Status st = fs::FileSystem::format(*dev, fo); !st.ok()) {
    fmt::print(stderr, "fs_sync_rate: format: {}\n", st.to_string());
    return 1;
  }
  auto mounted = fs::FileSystem::mount(*dev);
  if (!mounted.ok()) {
    fmt::print(stderr, "fs_sync_rate: mount: {}\n", mounted.status().to_string());
    return 1;
  }
  const double one = rate(**mounted, 1, seconds), two = rate(**mounted, 2, seconds);
  fmt::print("{}: append(100 B)+sync: 1 thread {:.0f}/s, 2 threads {:.0f}/s (x{:.2f})\n", spec, one, two, two / one);
  Status st = (*mounted)->unmount();
  (void)bdev::unregister(*dev);
  return st.ok() ? 0 : 1;
}
