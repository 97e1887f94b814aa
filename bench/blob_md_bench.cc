// Blobstore metadata operation rates and the cost of a first write to a thin blob, on any
// device spec, which it formats whatever it holds (a scratch device: the caller fills it with
// real data first). Prints one JSON object; bench/blobstore_bench.py runs it beside `sluice perf`.
//
//   blob_md_bench malloc:1G
//   blob_md_bench uring:/path/to/file --ops 2000
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "bdev/bdev.h"
#include "blob/blob.h"

using namespace sluice;
using namespace sluice::blob;

namespace {

template <typename Fn>
double rate(int n, Fn&& fn) {
  uint64_t t0 = clock::now_ns();
  for (int i = 0; i < n; ++i) {
    Status st = fn(i);
    if (!st.ok()) {
      fmt::print(stderr, "blob_md_bench: {}\n", st.to_string());
      std::exit(1);
    }
  }
  return n * 1e9 / static_cast<double>(clock::now_ns() - t0);
}

// Waits for one blob I/O on this thread's channel.
Status wait_io(Blobstore& bs, BlobChannel* ch, bool* done, Errc* st) {
  uint64_t deadline = clock::now_ns() + 10'000'000'000ull;
  while (!*done) {
    bs.poll(ch);
    if (clock::now_ns() > deadline) return Status(Errc::aborted, "I/O timed out");
  }
  return *st == Errc::ok ? Status::Ok() : Status(*st, "blob write failed");
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: blob_md_bench SPEC [--ops N]\n");
    return 2;
  }
  const std::string spec = argv[1];
  int ops = 2000;
  if (argc >= 4 && std::string(argv[2]) == "--ops") ops = std::atoi(argv[3]);

  auto name = bdev::create(spec, "bench0");
  if (!name.ok()) {
    fmt::print(stderr, "blob_md_bench: {}\n", name.status().to_string());
    return 1;
  }
  InitOptions io;
  io.force = true;  // a scratch device, full of the caller's filler
  auto init = Blobstore::init(*name, io);
  if (!init.ok()) {
    fmt::print(stderr, "blob_md_bench: {}\n", init.status().to_string());
    return 1;
  }
  Blobstore& bs = **init;
  nlohmann::json out;
  out["spec"] = spec;
  out["ops"] = ops;

  std::vector<BlobId> ids;
  out["create_sync_per_s"] = rate(ops, [&](int) {
    auto id = bs.create(CreateOptions{1, true, {}});
    if (!id.ok()) return id.status();
    ids.push_back(*id);
    return bs.sync_md();
  });
  out["resize_sync_per_s"] = rate(ops, [&](int i) {
    SLUICE_RETURN_IF_ERROR(bs.resize(ids[i % ids.size()], 2 + i % 2));
    return bs.sync_md();
  });
  out["xattr_sync_per_s"] = rate(ops, [&](int i) {
    SLUICE_RETURN_IF_ERROR(bs.set_xattr(ids[i % ids.size()], "k", fmt::format("value-{}", i)));
    return bs.sync_md();
  });

  // First write to a thin cluster (allocation) vs a write to an allocated one.
  const uint32_t cluster_units = bs.store_info().cluster_size / bs.store_info().io_unit;
  const int clusters = std::min<int>(256, static_cast<int>(bs.store_info().free_clusters / 2));
  auto thin = bs.create(CreateOptions{static_cast<uint64_t>(clusters), true, {}});
  auto blob = thin.ok() ? bs.open(*thin) : Result<std::shared_ptr<Blob>>(thin.status());
  auto ch = bs.get_channel();
  if (!blob.ok() || !ch.ok()) {
    fmt::print(stderr, "blob_md_bench: {}\n", (!blob.ok() ? blob.status() : ch.status()).to_string());
    return 1;
  }
  void* buf = std::aligned_alloc(4096, 4096);
  std::memset(buf, 0x5a, 4096);
  const uint64_t units = 4096 / bs.store_info().io_unit;
  std::vector<double> first_us, again_us;
  for (int pass = 0; pass < 2; ++pass) {
    for (int c = 0; c < clusters; ++c) {
      bool done = false;
      Errc st = Errc::ok;
      auto cb = [](void* arg, Errc s) {
        auto* p = static_cast<std::pair<bool*, Errc*>*>(arg);
        *p->second = s;
        *p->first = true;
      };
      std::pair<bool*, Errc*> ctx{&done, &st};
      uint64_t t0 = clock::now_ns();
      Status sub = bs.write(*ch, **blob, buf, static_cast<uint64_t>(c) * cluster_units, units, cb, &ctx);
      if (sub.ok()) sub = wait_io(bs, *ch, &done, &st);
      if (!sub.ok()) {
        fmt::print(stderr, "blob_md_bench: {}\n", sub.to_string());
        return 1;
      }
      (pass == 0 ? first_us : again_us).push_back((clock::now_ns() - t0) / 1000.0);
    }
  }
  out["thin_first_write_us_p50"] = median(first_us);
  out["allocated_write_us_p50"] = median(again_us);
  std::free(buf);
  (void)bs.put_channel(*ch);
  (void)bs.close(std::move(*blob));
  (void)bs.unload();
  fmt::print("{}\n", out.dump());
  return 0;
}
