// Fuzz target: loading corrupted blobstore metadata (docs/format/blobstore.md).
//
// Each input corrupts a copy of a valid store image (blob_image.h describes the input
// language), which is written to a malloc bdev and loaded read-only and read-write. Every
// failure must be a Status. Beyond "no crash, no leak, no hang", the harness checks what a
// loader owes its caller whatever the bytes were:
//   - a read-only load writes nothing;
//   - read-only and read-write loads of the same image agree (same blobs, same state);
//   - a state the loader accepted survives unload + load unchanged (the store can always
//     read back the checkpoint it wrote), including after metadata operations on it.
// A broken promise aborts with both states printed.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/log.h"
#include "bdev/bdev.h"
#include "blob/blob.h"
#include "blob_image.h"
#include "thread/io_channel.h"

namespace sluice::fuzz {
namespace {

using blob::Blobstore;
using blob::BlobId;
using blob::kPageSize;

constexpr const char* kBigDeviceSpec = "8G";

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "blob_load_fuzz: BROKEN PROMISE: %s\n", what.c_str());
  std::abort();
}

Status device_io(const BaseImage& img, const std::string& dev, bool write, char* buf) {
  bdev::OpenOptions o;
  o.write = write;
  auto d = bdev::open(dev, o);
  if (!d.ok()) return d.status();
  auto ch = (*d)->get_channel();
  if (!ch.ok()) return ch.status();
  const uint64_t blocks = img.meta_pages * (kPageSize / img.block_size);
  bdev::SyncIo io{**d, *ch};
  Status st = write ? io.write(buf, 0, blocks) : io.read(buf, 0, blocks);
  (void)(*d)->put_channel(*ch);
  return st;
}

// Everything a user can see of a loaded store, as text (for comparing loads).
std::string summarize(Blobstore& bs) {
  std::string s;
  auto si = bs.store_info();
  s += fmt::format("clusters {} free {} blobs {} cluster_size {} io_unit {}\n", si.total_clusters, si.free_clusters,
                   si.blobs, si.cluster_size, si.io_unit);
  auto sup = bs.super_blob();
  s += fmt::format("super {}\n", sup.ok() ? *sup : 0);
  for (BlobId id : bs.list()) {
    auto info = bs.info(id);
    if (!info.ok()) {
      s += fmt::format("blob {}: info failed: {}\n", id, info.status().to_string());
      continue;
    }
    auto clones = info->clones;
    std::sort(clones.begin(), clones.end());
    s += fmt::format("blob {} size {} alloc {} thin {} ro {} snap {} parent {} clones [{}]\n", id,
                     info->size_clusters, info->allocated_clusters, info->thin, info->read_only, info->snapshot,
                     info->parent, fmt::join(clones, ","));
    for (int k = 0; k < 2; ++k) {
      const auto& x = k ? info->internal_xattrs : info->xattrs;
      for (const auto& [name, value] : x) {
        auto got = bs.get_xattr(id, name, k == 1);
        if (!got.ok() || *got != value) broken(fmt::format("blob {}: info lists xattr {} that get_xattr does not return", id, name));
        s += fmt::format("  xattr{} {}={}\n", k ? "(internal)" : "", name, value.size() > 64 ? value.substr(0, 64) : value);
      }
    }
    (void)bs.get_xattr(id, "name");
    (void)bs.get_xattr(id, "no such attribute", true);
  }
  (void)bs.info(0);
  (void)bs.info(~uint64_t{0});
  return s;
}

// Metadata operations on whatever state the loader accepted: each may fail, none may crash.
void operate(Blobstore& bs) {
  auto ids = bs.list();
  blob::CreateOptions co;
  co.thin = true;
  co.size_clusters = 3;
  co.xattrs = {{"name", "fuzz"}};
  (void)bs.create(co);
  if (!ids.empty()) {
    const BlobId first = ids.front(), last = ids.back();
    (void)bs.set_xattr(last, "fz", "1");
    (void)bs.resize(first, 4);
    if (auto b = bs.open(last); b.ok()) {
      (void)first_write(bs, **b, 0);
      (void)bs.close(std::move(*b));
    }
    auto snap = bs.snapshot(last);
    if (snap.ok()) {
      auto cl = bs.clone(*snap);
      if (cl.ok()) (void)bs.inflate(*cl);
    }
    (void)bs.decouple(last);
    (void)bs.remove(first);
    (void)bs.remove_xattr(last, "name");
    blob::CreateOptions thick;
    thick.size_clusters = 2;
    (void)bs.create(thick);
  }
  (void)bs.sync_md();
  (void)bs.check();
}

struct Harness {
  Harness() : img(base_image()) {
    // SLUICE_FUZZ_LOG=1: the store's log and each load's outcome (to study one input).
    verbose = std::getenv("SLUICE_FUZZ_LOG") != nullptr;
    if (!verbose) log::set_threshold(static_cast<log::Level>(100));  // silence
    // The store gets and puts a channel around every metadata I/O; with no other reference
    // each get builds one (a request pool, stats) and each put tears it down, which was most
    // of an input's cost. Holding a reference on this thread keeps the one channel alive.
    pin_channel(img.dev);
    // A large sparse device (only the pages written are ever backed) for geometry the 4 MiB
    // image device cannot hold: a super block may then name regions of gigabytes, and the
    // loader must refuse them or cope, not allocate them. Read-only loads only, so nothing
    // but the metadata region is ever written to it.
    big_dev = bdev::create(fmt::format("malloc:{}?qd=4&sparse=1", kBigDeviceSpec), "fuzz_big0").value();
    pin_channel(big_dev);
    big_enabled = std::getenv("SLUICE_FUZZ_BIG") != nullptr;
    image.reset(static_cast<char*>(std::aligned_alloc(kPageSize, img.meta_pages * kPageSize)));
    readback.reset(static_cast<char*>(std::aligned_alloc(kPageSize, img.meta_pages * kPageSize)));
  }
  static void pin_channel(const std::string& name) {
    auto dev = bdev::find(name);
    if (!dev) broken("no bdev " + name);
    auto ch = thread::get_io_channel(*dev);  // never put: lives as long as the process
    if (!ch.ok()) broken("pinning a channel: " + ch.status().to_string());
  }

  const BaseImage& img;
  std::string big_dev;
  bool big_enabled = false;
  bool verbose = false;
  std::unique_ptr<char, void (*)(void*)> image{nullptr, std::free};
  std::unique_ptr<char, void (*)(void*)> readback{nullptr, std::free};

  void run(const uint8_t* data, size_t size) {
    const size_t bytes = img.meta_pages * kPageSize;
    std::memcpy(image.get(), img.bytes.get(), bytes);
    const uint8_t mode = corrupt_image(img, data, size, image.get());
    if (const char* dump = std::getenv("SLUICE_FUZZ_DUMP")) {  // the corrupted metadata, to study
      if (FILE* f = std::fopen(dump, "wb")) {
        std::fwrite(image.get(), 1, bytes, f);
        std::fclose(f);
      }
    }
    const bool big = (mode & kBitBigDevice) && big_enabled;
    const std::string& dev = big ? big_dev : img.dev;
    if (Status st = device_io(img, dev, true, image.get()); !st.ok()) broken("writing the image: " + st.to_string());

    // Read-only: inspect, and write nothing.
    std::string ro_state;
    blob::LoadOptions ro;
    ro.read_only = true;
    auto r = Blobstore::load(dev, ro);
    if (r.ok()) {
      (void)(*r)->check();
      ro_state = summarize(**r);
      (void)(*r)->sync_md();
      (void)(*r)->create({});  // refused: read-only
      if (Status st = (*r)->unload(); !st.ok()) broken("read-only unload failed: " + st.to_string());
      r.value().reset();
    } else if (r.status().message().empty()) {
      broken("a load failed without a message");
    }
    if (verbose) std::fprintf(stderr, "read-only load: %s\n", r.ok() ? "ok" : r.status().to_string().c_str());
    if (Status st = device_io(img, dev, false, readback.get()); !st.ok()) broken("reading back: " + st.to_string());
    if (std::memcmp(image.get(), readback.get(), bytes) != 0) broken("a read-only load changed the device");
    if (big) return;

    // Read-write: recovery, then the same state as read-only.
    auto w = Blobstore::load(img.dev);
    if (verbose) std::fprintf(stderr, "read-write load: %s\n", w.ok() ? "ok" : w.status().to_string().c_str());
    if (!w.ok()) {
      if (w.status().message().empty()) broken("a load failed without a message");
      // Recovery may need room the read-only path does not (a checkpoint); anything else
      // the read-only load accepted must load read-write too.
      if (r.ok() && w.status().code() != Errc::no_space)
        broken(fmt::format("read-only load succeeded, read-write failed: {}", w.status().to_string()));
      return;
    }
    if (!r.ok()) broken(fmt::format("read-only load failed ({}) but read-write succeeded", r.status().to_string()));
    Blobstore& bs = **w;
    (void)bs.check();
    std::string rw_state = summarize(bs);
    if (rw_state != ro_state) broken("read-only and read-write loads disagree:\n--- ro\n" + ro_state + "--- rw\n" + rw_state);
    if (mode & kBitOps) {
      operate(bs);
      rw_state = summarize(bs);
    }
    Status st = bs.unload();
    w.value().reset();
    if (!st.ok()) return;  // a Status (e.g. the state outgrew a checkpoint slot) is an answer

    // What was unloaded loads again, unchanged.
    auto again = Blobstore::load(img.dev);
    if (!again.ok()) broken(fmt::format("reload after a clean unload failed: {}\nstate:\n{}", again.status().to_string(), rw_state));
    std::string re_state = summarize(**again);
    if (re_state != rw_state) broken("state changed across unload/load:\n--- before\n" + rw_state + "--- after\n" + re_state);
    (void)(*again)->check();
    (void)(*again)->unload();
  }
};

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sluice::fuzz::Harness* h = new sluice::fuzz::Harness();  // lives for the process
  h->run(data, size);
  return 0;
}
