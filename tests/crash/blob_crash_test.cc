// The blobstore under power cuts (DESIGN.md, "Durability and the crash model").
//
// A seeded workload of metadata operations with syncs between them runs on a crashsim
// device that cuts power at a chosen I/O boundary; each write not yet flushed then survives,
// vanishes or tears. After the cut the store is loaded from the post-crash image and must:
//   - load (recovery never fails on an image the model can produce),
//   - pass fsck (every cluster owned once, free count exact, no dirty cluster left),
//   - equal the state after some operation at or after the last acknowledged sync_md():
//     every synced change survived and no operation is half-visible.
// Small workloads are cut at every boundary with several seeds; large ones at thousands of
// random (boundary, seed) pairs.
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev/crashsim.h"
#include "blob/blob.h"
#include "blob/store.h"
#include "crash_report.h"

namespace sluice::blob {
namespace {

constexpr const char* kBase = "crash_base";
constexpr const char* kCrash = "crash_cs";

InitOptions small_store() {
  InitOptions o;
  o.cluster_size = 64 * 1024;
  o.checkpoint_bytes = 64 * 1024;
  o.journal_bytes = 64 * 1024;  // 16 pages: wraps and checkpoints happen often
  return o;
}

// Everything a user can observe of the metadata, in one comparable string.
std::string canonical(Blobstore& bs) {
  std::string s;
  for (BlobId id : bs.list()) {
    auto i = bs.info(id);
    if (!i.ok()) return "error: " + i.status().to_string();
    s += fmt::format("blob {} size={} alloc={} thin={} ro={} snap={} parent={}", id, i->size_clusters,
                     i->allocated_clusters, i->thin, i->read_only, i->snapshot, i->parent);
    for (auto& [k, v] : i->xattrs) s += fmt::format(" {}={}", k, v.size() > 12 ? v.substr(0, 12) : v);
    for (auto& [k, v] : i->internal_xattrs) s += fmt::format(" _{}={}", k, v);
    s += "\n";
  }
  auto sb = bs.super_blob();
  s += fmt::format("super={}\n", sb.ok() ? *sb : 0);
  return s;
}

bool is_power_failure(const Status& st) { return st.code() == Errc::aborted || st.code() == Errc::io_error; }

// Runs `ops` operations chosen by `workload_seed`, recording the observable state after each.
struct Run {
  std::vector<std::string> states;  // states[0]: before any op
  size_t last_synced = 0;           // index into states of the last acknowledged sync
  bool stopped_by_failure = false;
  std::string unexpected;           // an error that is neither a refusal nor the power cut
};

Run run_workload(Blobstore& bs, uint64_t workload_seed, int ops) {
  Run run;
  run.states.push_back(canonical(bs));
  std::mt19937_64 rng(workload_seed);
  auto pick = [&](const std::vector<BlobId>& v) { return v[rng() % v.size()]; };
  for (int k = 0; k < ops; ++k) {
    std::vector<BlobId> all = bs.list(), writable, snaps, clones;
    for (BlobId id : all) {
      auto i = bs.info(id);
      if (!i.ok()) continue;
      if (!i->read_only) writable.push_back(id);
      if (i->snapshot) snaps.push_back(id);
      if (i->parent) clones.push_back(id);
    }
    Status st;
    bool synced = false;
    const int choice = static_cast<int>(rng() % 100);
    if (choice < 18 || all.empty()) {
      CreateOptions co;
      co.thin = rng() % 2;
      co.size_clusters = co.thin ? 1 + rng() % 200 : 1 + rng() % 4;
      co.xattrs["name"] = fmt::format("b{}", k);
      st = bs.create(co).status();
    } else if (choice < 30) {
      st = bs.sync_md();
      synced = true;
    } else if (choice < 42 && !writable.empty()) {
      st = bs.resize(pick(writable), rng() % 6);
    } else if (choice < 56) {
      st = bs.set_xattr(pick(all), fmt::format("k{}", rng() % 3), std::string(1 + rng() % 600, 'a' + k % 26));
    } else if (choice < 60) {
      st = bs.remove_xattr(pick(all), fmt::format("k{}", rng() % 3));
    } else if (choice < 70) {
      st = bs.remove(pick(all));
    } else if (choice < 78 && !writable.empty()) {
      st = bs.snapshot(pick(writable)).status();
    } else if (choice < 86 && !snaps.empty()) {
      st = bs.clone(pick(snaps)).status();
    } else if (choice < 90 && !clones.empty()) {
      st = bs.inflate(pick(clones));
    } else if (choice < 94 && !clones.empty()) {
      st = bs.decouple(pick(clones));
    } else if (choice < 97) {
      st = bs.set_super_blob(pick(all));
    } else {
      st = bs.set_read_only(pick(all));
    }
    if (is_power_failure(st)) {
      run.stopped_by_failure = true;
      return run;
    }
    if (!st.ok() && st.code() != Errc::busy && st.code() != Errc::permission && st.code() != Errc::invalid_argument &&
        st.code() != Errc::not_found && st.code() != Errc::no_space) {
      run.unexpected = st.to_string();
      return run;
    }
    run.states.push_back(canonical(bs));
    if (synced) run.last_synced = run.states.size() - 1;
  }
  Status st = bs.sync_md();
  if (is_power_failure(st)) {
    run.stopped_by_failure = true;
    return run;
  }
  run.states.push_back(canonical(bs));
  run.last_synced = run.states.size() - 1;
  return run;
}

struct Trial {
  uint64_t workload_seed;
  int ops;
  uint64_t cut;  // 0: no cut (to count boundaries)
  uint64_t crash_seed;
};

struct Outcome {
  uint64_t boundaries = 0;
  std::string failure;  // empty: the recovered store was consistent
};

Outcome run_trial(const Trial& t) {
  Outcome out;
  auto fail = [&](std::string why) {
    out.failure = fmt::format("workload {} ops {} cut {} seed {}: {}", t.workload_seed, t.ops, t.cut, t.crash_seed, why);
    return out;
  };
  if (auto b = bdev::create("malloc:8M", kBase); !b.ok()) return fail(b.status().to_string());
  {
    auto bs = Blobstore::init(kBase, small_store());
    if (!bs.ok()) return fail(bs.status().to_string());
    if (Status st = (*bs)->unload(); !st.ok()) return fail(st.to_string());
  }
  auto cs = bdev::CrashSim::stack(kBase, kCrash);
  if (!cs.ok()) return fail(cs.status().to_string());
  cs->set_seed(t.crash_seed);
  if (t.cut) (void)cs->cut_power_at(t.cut);

  Run run;
  {
    auto bs = Blobstore::load(kCrash);
    if (!bs.ok()) {
      if (!cs->powered_off()) return fail("load before the cut: " + bs.status().to_string());
      run.states.push_back("");  // cut during load: the image is the freshly initialized one
    } else {
      run = run_workload(**bs, t.workload_seed, t.ops);
      if (!run.unexpected.empty()) return fail("unexpected error: " + run.unexpected);
      cs->cut_power();  // also ends a run that finished before its cut point
      (*bs)->abandon();
    }
  }
  out.boundaries = cs->boundaries();
  if (Status st = bdev::unregister(kCrash); !st.ok()) return fail(st.to_string());

  auto bs = Blobstore::load(kBase);
  if (!bs.ok()) return fail("recovery failed: " + bs.status().to_string());
  std::string problems;
  for (auto& p : (*bs)->store().check()) problems += p + "; ";
  if (!problems.empty()) return fail("fsck: " + problems);
  std::string got = canonical(**bs);
  bool matched = run.states.size() == 1 && run.states[0].empty();  // cut during the first load
  for (size_t k = run.last_synced; k < run.states.size() && !matched; ++k) matched = run.states[k] == got;
  if (!matched) {
    return fail(fmt::format("recovered state matches no state at or after the last sync (#{} of {}):\n{}\nlast synced:\n{}",
                            run.last_synced, run.states.size(), got, run.states[run.last_synced]));
  }
  (void)(*bs)->unload();
  bs.value().reset();
  (void)bdev::unregister(kBase);
  return out;
}

void cleanup() {
  (void)bdev::unregister(kCrash);
  (void)bdev::unregister(kBase);
}

TEST(BlobCrash, SmallWorkloadCutAtEveryBoundary) {
  constexpr int kOps = 24;
  uint64_t tried = 0, failed = 0;
  for (uint64_t workload : {1, 2, 3}) {
    Outcome full = run_trial({workload, kOps, 0, 0});
    ASSERT_TRUE(full.failure.empty()) << full.failure;
    cleanup();
    ASSERT_GT(full.boundaries, 10u);
    for (uint64_t cut = 1; cut <= full.boundaries + 1; ++cut) {
      for (uint64_t seed : {1, 2}) {
        Outcome o = run_trial({workload, kOps, cut, seed * 1000 + cut});
        ++tried;
        if (!o.failure.empty()) {
          ++failed;
          ADD_FAILURE() << o.failure;
          cleanup();
        }
      }
    }
  }
  testing::report_crash_points("blobstore metadata, every boundary", tried, failed);
  EXPECT_EQ(failed, 0u);
}

TEST(BlobCrash, LargeWorkloadsRandomCuts) {
  constexpr int kOps = 120;
  constexpr int kWorkloads = 8;
  constexpr int kCutsPerWorkload = 260;  // >= 2000 in all
  uint64_t tried = 0, failed = 0;
  std::mt19937_64 rng(20261122);
  for (int w = 0; w < kWorkloads; ++w) {
    const uint64_t workload = 100 + w;
    Outcome full = run_trial({workload, kOps, 0, 0});
    ASSERT_TRUE(full.failure.empty()) << full.failure;
    cleanup();
    for (int i = 0; i < kCutsPerWorkload; ++i) {
      uint64_t cut = 1 + rng() % (full.boundaries + 1);
      Outcome o = run_trial({workload, kOps, cut, rng()});
      ++tried;
      if (!o.failure.empty()) {
        ++failed;
        if (failed <= 5) ADD_FAILURE() << o.failure;
        cleanup();
      }
    }
  }
  testing::report_crash_points("blobstore metadata, random", tried, failed);
  EXPECT_EQ(failed, 0u);
}

}  // namespace
}  // namespace sluice::blob
