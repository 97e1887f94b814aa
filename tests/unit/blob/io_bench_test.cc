// Blob vs raw bdev random-read cost (disabled: a benchmark, not a test; run with
// --gtest_also_run_disabled_tests).
#include "io_test_support.h"

namespace sluice::blob {
namespace {

using namespace iotest;

namespace bench {

// Random 4 KiB reads at queue depth 32 for `seconds`; returns IOPS. `submit(buf, unit, cb,
// arg)` issues one read of 4 KiB at io unit `unit`, `poll()` reaps.
uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

template <typename Submit, typename Poll>
double randread_qd32(uint64_t units, uint32_t unit_bytes, double seconds, double* cpu_ns_per_io, Submit&& submit,
                     Poll&& poll) {
  constexpr int kQd = 32;
  const uint64_t per_io = 4096 / unit_bytes;
  struct Slot {
    void* ctx;
    int i;
  };
  struct Ctx {
    std::mt19937_64 rng{1};
    uint64_t units, per_io, ops = 0;
    bool stop = false;
    int inflight = 0;
    std::vector<std::unique_ptr<AlignedBuffer>> bufs;
    std::vector<Slot> slots;
    std::function<Status(int)> issue;
  } ctx;
  ctx.units = units;
  ctx.per_io = per_io;
  for (int i = 0; i < kQd; ++i) {
    ctx.bufs.push_back(std::make_unique<AlignedBuffer>(4096));
    ctx.slots.push_back({&ctx, i});
  }
  static constexpr bdev::IoCallback on_done = [](void* arg, Errc st) {
    auto* s = static_cast<Slot*>(arg);
    auto* c = static_cast<Ctx*>(s->ctx);
    EXPECT_EQ(st, Errc::ok);
    ++c->ops;
    --c->inflight;
    if (!c->stop && c->issue(s->i).ok()) ++c->inflight;
  };
  ctx.issue = [&](int i) {
    const uint64_t unit = ctx.rng() % (ctx.units / ctx.per_io) * ctx.per_io;
    return submit(ctx.bufs[i]->data(), unit, on_done, &ctx.slots[i]);
  };
  for (int i = 0; i < kQd; ++i)
    if (ctx.issue(i).ok()) ++ctx.inflight;
  const uint64_t start = clock::now_ns();
  const uint64_t cpu_start = thread_cpu_ns();
  const uint64_t end = start + static_cast<uint64_t>(seconds * 1e9);
  uint64_t now = start;
  while (now < end) {
    for (int i = 0; i < 16; ++i) poll();
    now = clock::now_ns();
  }
  const uint64_t ops = ctx.ops;
  *cpu_ns_per_io = static_cast<double>(thread_cpu_ns() - cpu_start) / static_cast<double>(ops);
  ctx.stop = true;
  while (ctx.inflight > 0) poll();
  return static_cast<double>(ops) / (static_cast<double>(now - start) / 1e9);
}

void compare(const std::string& spec, double seconds, int rounds) {
  auto name = bdev::create(spec, "");
  if (!name.ok()) {
    std::printf("%-40s unavailable: %s\n", spec.c_str(), name.status().to_string().c_str());
    return;
  }
  uint64_t blob_units = 0;
  BlobId id = 0;
  {
    InitOptions o;
    o.cluster_size = 1u << 20;
    auto bs = Blobstore::init(*name, o);
    ASSERT_TRUE(bs.ok()) << bs.status().to_string();
    const StoreInfo si = (*bs)->store_info();
    auto b = (*bs)->create(CreateOptions{si.free_clusters, false, {}});
    ASSERT_TRUE(b.ok());
    id = *b;
    blob_units = si.free_clusters * (si.cluster_size / si.io_unit);
    // Fill the blob so reads touch real data (files: not holes).
    auto blob = (*bs)->open(id);
    auto ch = (*bs)->get_channel();
    ASSERT_TRUE(blob.ok() && ch.ok());
    AlignedBuffer buf(1u << 20);
    buf.fill_pattern(3);
    const uint64_t per = (1u << 20) / si.io_unit;
    for (uint64_t u = 0; u < blob_units; u += per) {
      Waiter w;
      ASSERT_TRUE((*bs)->write(*ch, **blob, buf.data(), u, per, &Waiter::cb, &w).ok());
      while (!w.done) (*bs)->poll(*ch);
    }
    ASSERT_TRUE((*bs)->put_channel(*ch).ok());
    ASSERT_TRUE((*bs)->close(std::move(*blob)).ok());
    ASSERT_TRUE((*bs)->unload().ok());
  }
  double raw_sum = 0, blob_sum = 0, raw_cpu = 0, blob_cpu = 0, cpu = 0;
  // Alternate which goes first, so drift in the machine's load favours neither.
  for (int r = 0; r < rounds; ++r) {
    auto run_raw = [&] {
      auto desc = bdev::open(*name);
      ASSERT_TRUE(desc.ok());
      auto ch = (*desc)->get_channel();
      ASSERT_TRUE(ch.ok());
      const uint32_t bs = (*desc)->geometry().block_size;
      const uint64_t blocks = (*desc)->geometry().num_blocks;
      double iops = randread_qd32(
          blocks, bs, seconds, &cpu,
          [&](void* buf, uint64_t lba, bdev::IoCallback cb, void* arg) {
            return (*desc)->read(*ch, buf, lba, 4096 / bs, cb, arg);
          },
          [&] { bdev::poll(*ch); });
      raw_sum += iops;
      raw_cpu += cpu;
      ASSERT_TRUE((*desc)->put_channel(*ch).ok());
    };
    auto run_blob = [&] {
      // A null device keeps nothing: format it again instead of loading.
      const bool keeps_data = spec.rfind("null:", 0) != 0;
      InitOptions o;
      o.cluster_size = 1u << 20;
      auto bs = keeps_data ? Blobstore::load(*name) : Blobstore::init(*name, o);
      ASSERT_TRUE(bs.ok()) << bs.status().to_string();
      if (!keeps_data) {
        ASSERT_EQ(*(*bs)->create(CreateOptions{(*bs)->store_info().free_clusters, false, {}}), id);
      }
      auto blob = (*bs)->open(id);
      auto ch = (*bs)->get_channel();
      ASSERT_TRUE(blob.ok() && ch.ok());
      const uint32_t unit = (*bs)->store_info().io_unit;
      double iops = randread_qd32(
          blob_units, unit, seconds, &cpu,
          [&](void* buf, uint64_t u, bdev::IoCallback cb, void* arg) {
            return (*bs)->read(*ch, **blob, buf, u, 4096 / unit, cb, arg);
          },
          [&] { (*bs)->poll(*ch); });
      blob_sum += iops;
      blob_cpu += cpu;
      ASSERT_TRUE((*bs)->put_channel(*ch).ok());
      ASSERT_TRUE((*bs)->close(std::move(*blob)).ok());
    };
    if (r % 2 == 0) {
      run_raw();
      run_blob();
    } else {
      run_blob();
      run_raw();
    }
  }
  std::printf("%-22s raw %9.0f IOPS %6.0f ns/IO   blob %9.0f IOPS %6.0f ns/IO   IOPS blob/raw %.3f\n",
              spec.substr(0, 22).c_str(), raw_sum / rounds, raw_cpu / rounds, blob_sum / rounds, blob_cpu / rounds,
              blob_sum / raw_sum);
  (void)bdev::unregister(*name);
}

}  // namespace bench

TEST(BlobIoBench, DISABLED_RandRead4kQd32BlobVsRaw) {
  const char* secs = std::getenv("SLUICE_BENCH_SECONDS");
  const double seconds = secs ? std::atof(secs) : 2.0;
  const char* only = std::getenv("SLUICE_BENCH_ONLY");  // e.g. "null" or "malloc"
  auto want = [&](const char* what) { return only == nullptr || std::strstr(what, only) != nullptr; };
  if (want("null:1G?bs=4096")) bench::compare("null:1G?bs=4096", seconds, 4);  // pure per-I/O overhead
  if (want("malloc:1G?bs=4096")) bench::compare("malloc:1G?bs=4096", seconds, 6);
  if (want("malloc:1G?bs=512")) bench::compare("malloc:1G?bs=512", seconds, 4);
  if (want("uring")) {
    TempFile f(1u << 30);
    bench::compare("uring:" + f.path(), seconds, 4);
  }
}

}  // namespace
}  // namespace sluice::blob
