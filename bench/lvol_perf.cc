// Not a test (no assertion, not in ctest): 4 KiB random reads at QD32 through an lvol bdev
// and through a raw malloc bdev of the same size, alternating runs on one thread, with IOPS
// and CPU per I/O. The goal is the lvol within 5% of raw.
//
//   lvol_perf [seconds per run = 2] [runs each = 5] [qd = 32] [region MiB = 900]
//
// The region is how much of each device the reads spread over: the default makes almost every
// read miss the CPU caches and TLB (as a real device would be far slower still); a small one
// (e.g. 8) shows the stack's own cost per I/O more sharply.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/clock.h"
#include "bdev/bdev.h"
#include "lvol/lvol.h"

using namespace sluice;

namespace {

constexpr uint32_t kBlock = 4096;
constexpr uint64_t kDeviceBytes = 1ull << 30;
constexpr uint64_t kVolumeBytes = 900ull << 20;
uint64_t g_region_bytes = kVolumeBytes;  // both runs read blocks from this many bytes

void die(const std::string& what, const Status& st) {
  std::fprintf(stderr, "lvol_perf: %s: %s\n", what.c_str(), st.to_string().c_str());
  std::exit(1);
}

struct Run {
  double iops = 0;
  double cpu_ns_per_io = 0;
};

class Reader {
 public:
  Reader(const std::string& name, uint32_t qd) : qd_(qd) {
    auto d = bdev::open(name);
    if (!d.ok()) die("open " + name, d.status());
    desc_ = std::move(d.value());
    auto c = desc_->get_channel();
    if (!c.ok()) die("channel of " + name, c.status());
    ch_ = *c;
    blocks_ = std::min<uint64_t>(desc_->geometry().num_blocks, g_region_bytes / kBlock);
    buf_ = static_cast<char*>(std::aligned_alloc(4096, uint64_t{qd} * kBlock));
    slots_.resize(qd);
    for (uint32_t i = 0; i < qd; ++i) slots_[i] = {this, buf_ + uint64_t{i} * kBlock};
  }
  ~Reader() {
    (void)desc_->put_channel(ch_);
    desc_.reset();
    std::free(buf_);
  }

  // Writes every block once so that reads touch real memory, not the zero page.
  void prefill() {
    const uint64_t chunk = 256;  // blocks per write
    char* p = static_cast<char*>(std::aligned_alloc(4096, chunk * kBlock));
    std::memset(p, 0x5a, chunk * kBlock);
    bdev::SyncIo io{*desc_, ch_};
    for (uint64_t b = 0; b < blocks_; b += chunk) {
      Status st = io.write(p, b, std::min(chunk, blocks_ - b));
      if (!st.ok()) die("prefill", st);
    }
    std::free(p);
  }

  Run run(double seconds) {
    stop_ = false;
    done_ = 0;
    outstanding_ = 0;
    const uint64_t t0 = clock::now_ns(), cpu0 = clock::thread_cpu_ns();
    for (auto& s : slots_) submit(&s);
    const uint64_t end = t0 + static_cast<uint64_t>(seconds * 1e9);
    uint64_t now = t0;
    while (now < end) {
      for (int i = 0; i < 64; ++i) bdev::poll(ch_);
      now = clock::now_ns();
    }
    stop_ = true;
    const uint64_t ios = done_;
    const uint64_t cpu = clock::thread_cpu_ns() - cpu0;
    while (outstanding_ > 0) bdev::poll(ch_);
    Run r;
    r.iops = ios * 1e9 / static_cast<double>(now - t0);
    r.cpu_ns_per_io = static_cast<double>(cpu) / static_cast<double>(ios);
    return r;
  }

 private:
  struct Slot {
    Reader* r;
    char* buf;
  };

  uint64_t next_block() {
    rng_ ^= rng_ << 13, rng_ ^= rng_ >> 7, rng_ ^= rng_ << 17;
    return rng_ % blocks_;
  }

  void submit(Slot* s) {
    Status st = desc_->read(ch_, s->buf, next_block(), 1, on_done, s);
    if (!st.ok()) die("read", st);
    ++outstanding_;
  }

  static void on_done(void* arg, Errc status) {
    auto* s = static_cast<Slot*>(arg);
    Reader* r = s->r;
    --r->outstanding_;
    if (status != Errc::ok) die("read completion", Status(status, "read failed"));
    ++r->done_;
    if (!r->stop_) r->submit(s);
  }

  uint32_t qd_;
  std::unique_ptr<bdev::BdevDesc> desc_;
  bdev::BdevChannel* ch_ = nullptr;
  uint64_t blocks_ = 0;
  char* buf_ = nullptr;
  std::vector<Slot> slots_;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;
  bool stop_ = false;
  uint64_t done_ = 0;
  uint32_t outstanding_ = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  const uint32_t qd = argc > 3 ? static_cast<uint32_t>(std::atoi(argv[3])) : 32;
  if (argc > 4) g_region_bytes = std::min<uint64_t>(kVolumeBytes, std::strtoull(argv[4], nullptr, 10) << 20);
  if (seconds <= 0 || runs <= 0 || qd == 0 || g_region_bytes < kBlock) {
    std::fprintf(stderr, "usage: lvol_perf [seconds] [runs] [qd] [region MiB]\n");
    return 2;
  }
  std::printf("4 KiB random reads, QD%u, %d x %.1f s each, region %llu MiB\n", qd, runs, seconds,
              static_cast<unsigned long long>(g_region_bytes >> 20));
  const std::string spec = fmt::format("malloc:{}?bs={}", kDeviceBytes, kBlock);

  auto raw = bdev::create(spec, "raw");
  if (!raw.ok()) die("create raw", raw.status());
  // The floor for any virtual bdev: a pass-through stacked device (the error bdev with no
  // rule) pays the generic layer twice, as the lvol does.
  auto pass = bdev::create("error:" + spec, "passthru");
  if (!pass.ok()) die("create passthru", pass.status());
  auto base = bdev::create(spec, "lvbase");
  if (!base.ok()) die("create base", base.status());
  auto store = lvol::LvolStore::create(*base, "perf", 1u << 20);
  if (!store.ok()) die("create store", store.status());
  auto vol = (*store)->create_volume("v", kVolumeBytes, false);
  if (!vol.ok()) die("create volume", vol.status());

  const char* names[] = {"raw", "passthru", "perf/v"};
  constexpr int kDevs = 3;
  std::vector<double> iops[kDevs], cpu[kDevs];
  {
    std::vector<std::unique_ptr<Reader>> readers;
    for (auto* n : names) readers.push_back(std::make_unique<Reader>(n, qd));
    for (auto& r : readers) r->prefill();
    for (auto& r : readers) (void)r->run(0.3);  // warm up
    for (int i = 0; i < runs; ++i) {
      std::printf("run %d:", i + 1);
      Run got[kDevs];
      for (int d = 0; d < kDevs; ++d) {
        got[d] = readers[d]->run(seconds);
        iops[d].push_back(got[d].iops);
        cpu[d].push_back(got[d].cpu_ns_per_io);
        std::printf(" %s %.0f IOPS (%.0f ns CPU/IO)%s", names[d], got[d].iops, got[d].cpu_ns_per_io,
                    d + 1 < kDevs ? "," : "");
      }
      std::printf("; lvol/raw %.3f\n", got[2].iops / got[0].iops);
    }
  }
  std::printf("median:");
  for (int d = 0; d < kDevs; ++d) std::printf(" %s %.0f IOPS (%.0f ns CPU/IO)%s", names[d], median(iops[d]), median(cpu[d]), d + 1 < kDevs ? "," : "\n");
  std::printf("lvol/raw %.3f IOPS, %.3f CPU/IO; passthru/raw %.3f IOPS (goal: lvol/raw >= 0.95)\n",
              median(iops[2]) / median(iops[0]), median(cpu[0]) / median(cpu[2]), median(iops[1]) / median(iops[0]));
  Status st = (*store)->unload();
  if (!st.ok()) die("unload", st);
  return 0;
}
