// RocksDB on SluiceFS under power cuts (docs/design.md, "Two crash models").
//
// A DB lives on a crashsim device registered under a name, reached through the plugin as
// sluice://<name>. A workload writes keys; each write RocksDB acknowledges as durable is
// recorded: with sync=1, every Put that returned OK; with the WAL disabled, every key
// written before a Flush() that returned OK. Power is cut at a random I/O boundary (each
// unflushed write then survives, vanishes or tears). The post-crash image is mounted again
// and the DB reopened; it must open, hold every acknowledged key with its value, hold no
// key with a wrong value, and iterate without error; SluiceFS's fsck must then pass.
#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>

#include "bdev/bdev.h"
#include "bdev/crashsim.h"
#include "crash_report.h"
#include "fs/fs.h"
#include "private_pool_env.h"
#include "rocksdb/sluice_rocksdb.h"

namespace sluice::rocksdb_test {
namespace {

// A power cut empties RAM, write buffers included: the plugin's mounts keep none (fs.h,
// MountOptions::write_buffer_dir), so only what was synced can survive, as on real hardware.
const bool kNoWriteBuffers = ::setenv("SLUICE_WRITE_BUFFER_DIR", "", 1) == 0;


constexpr const char* kBase = "rdb_crash_base";
constexpr const char* kCrash = "rdb_crash_cs";
constexpr const char* kDb = "/db";

enum class Mode { sync_wal, no_wal_flush };

struct Trial {
  Mode mode;
  uint64_t workload_seed;
  int keys;
  uint64_t cut;  // 0: no cut (to count boundaries)
  uint64_t crash_seed;
};

struct Outcome {
  uint64_t boundaries = 0;
  int acknowledged = 0;
  std::string failure;
};

std::string key(int i) { return fmt::format("k{:06}", i); }
// Values of varying size, some spanning several blocks.
std::string value(uint64_t seed, int i) {
  std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(i));
  std::string v = fmt::format("v{}-{}-", seed, i);
  v.resize(16 + rng() % 3000, static_cast<char>('a' + i % 26));
  return v;
}

::rocksdb::Options db_options(::rocksdb::Env* env) {
  ::rocksdb::Options o;
  o.env = env;
  o.create_if_missing = true;
  o.write_buffer_size = 64 << 10;  // flushes and compactions happen during the workload
  o.level0_file_num_compaction_trigger = 2;
  o.target_file_size_base = 128 << 10;
  o.max_bytes_for_level_base = 512 << 10;
  o.paranoid_checks = true;
  o.keep_log_file_num = 2;
  o.max_file_opening_threads = 1;  // no short-lived threads per open: trials stay fast
  o.stats_dump_period_sec = 0;
  o.stats_persist_period_sec = 0;
  return o;
}

struct Plugin {
  std::unique_ptr<::rocksdb::Env> env;
  std::unique_ptr<::rocksdb::DB> db;
  ::rocksdb::Status open(const std::string& device) {
    std::unique_ptr<::rocksdb::Env> base;
    ::rocksdb::Status s = rocksdb_plugin::NewEnv("sluice://" + device, &base);
    if (!s.ok()) return s;
    env = std::make_unique<PrivatePoolEnv>(std::move(base));
    ::rocksdb::DB* raw = nullptr;
    s = ::rocksdb::DB::Open(db_options(env.get()), kDb, &raw);
    db.reset(raw);
    return s;
  }
  void close() {
    if (db) (void)db->Close();
    db.reset();
    env.reset();  // the last user unmounts
  }
};

// Writes keys until done or the first error; returns how many are acknowledged as durable.
int run_workload(::rocksdb::DB& db, const Trial& t) {
  ::rocksdb::WriteOptions wo;
  wo.sync = t.mode == Mode::sync_wal;
  wo.disableWAL = t.mode == Mode::no_wal_flush;
  int acknowledged = 0;
  for (int i = 0; i < t.keys; ++i) {
    if (!db.Put(wo, key(i), value(t.workload_seed, i)).ok()) return acknowledged;
    if (t.mode == Mode::sync_wal) {
      acknowledged = i + 1;
    } else if (i % 25 == 24) {
      if (!db.Flush({}).ok()) return acknowledged;
      acknowledged = i + 1;
    }
  }
  if (t.mode == Mode::no_wal_flush && db.Flush({}).ok()) acknowledged = t.keys;
  return acknowledged;
}

std::string verify(::rocksdb::DB& db, const Trial& t, int acknowledged) {
  for (int i = 0; i < t.keys; ++i) {
    std::string v;
    ::rocksdb::Status s = db.Get({}, key(i), &v);
    if (s.IsNotFound()) {
      if (i < acknowledged) return fmt::format("acknowledged key {} is missing ({} acknowledged)", i, acknowledged);
      continue;
    }
    if (!s.ok()) return fmt::format("get {}: {}", i, s.ToString());
    if (v != value(t.workload_seed, i)) return fmt::format("key {} has a wrong value ({} bytes)", i, v.size());
  }
  std::unique_ptr<::rocksdb::Iterator> it(db.NewIterator({}));
  int n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  if (!it->status().ok()) return "iteration: " + it->status().ToString();
  if (n < acknowledged) return fmt::format("iteration saw {} keys, {} acknowledged", n, acknowledged);
  return "";
}

void cleanup() {
  (void)bdev::unregister(kCrash);
  (void)bdev::unregister(kBase);
}

Outcome run_trial(const Trial& t) {
  Outcome out;
  auto fail = [&](std::string why) {
    out.failure = fmt::format("mode {} workload {} cut {} seed {}: {}", static_cast<int>(t.mode), t.workload_seed,
                              t.cut, t.crash_seed, why);
    return out;
  };
  if (auto b = bdev::create("malloc:24M", kBase); !b.ok()) return fail(b.status().to_string());
  if (Status st = fs::FileSystem::format(kBase, {.cluster_size = 256u << 10}); !st.ok())
    return fail("format: " + st.to_string());
  auto cs = bdev::CrashSim::stack(kBase, kCrash);
  if (!cs.ok()) return fail(cs.status().to_string());
  cs->set_seed(t.crash_seed);
  if (t.cut) (void)cs->cut_power_at(t.cut);
  {
    Plugin p;
    ::rocksdb::Status s = p.open(kCrash);
    if (s.ok()) {
      out.acknowledged = run_workload(*p.db, t);
      if (!cs->powered_off() && out.acknowledged < t.keys)
        return fail(fmt::format("workload failed before the cut after {} keys", out.acknowledged));
    } else if (!cs->powered_off()) {
      return fail("open before the cut: " + s.ToString());
    }
    cs->cut_power();  // also ends a run that finished before its cut point
    p.close();
  }
  out.boundaries = cs->boundaries();
  if (Status st = bdev::unregister(kCrash); !st.ok()) return fail("unregister crashsim: " + st.to_string());

  Plugin p;
  ::rocksdb::Status s = p.open(kBase);
  if (!s.ok()) {
    // Cut before RocksDB had made its DB durable: only acceptable if nothing was acknowledged.
    if (out.acknowledged == 0 && s.IsNotFound()) {
      p.close();
      (void)bdev::unregister(kBase);
      return out;
    }
    return fail(fmt::format("reopen after the cut ({} acknowledged): {}", out.acknowledged, s.ToString()));
  }
  std::string problem = verify(*p.db, t, out.acknowledged);
  p.close();
  if (!problem.empty()) return fail(problem);
  // And SluiceFS's own fsck of the image RocksDB just used.
  auto mounted = fs::FileSystem::mount(kBase);
  if (!mounted.ok()) return fail("mount for fsck: " + mounted.status().to_string());
  auto report = (*mounted)->check();
  if (report.ok() && !report->ok()) return fail("fsck: " + report->problems.front());
  if (!report.ok() && report.status().code() != Errc::not_supported) return fail("fsck: " + report.status().to_string());
  (void)(*mounted)->unmount();
  mounted.value().reset();
  (void)bdev::unregister(kBase);
  return out;
}

void random_cuts(Mode mode, const char* suite, int workloads, int cuts_per_workload, int keys) {
  uint64_t tried = 0, failed = 0;
  std::mt19937_64 rng(20261122 + static_cast<int>(mode));
  for (int w = 0; w < workloads; ++w) {
    const uint64_t workload = 100 + w;
    Outcome full = run_trial({mode, workload, keys, 0, 0});
    ASSERT_TRUE(full.failure.empty()) << full.failure;
    ASSERT_EQ(full.acknowledged, keys);
    ASSERT_GT(full.boundaries, 10u);
    for (int i = 0; i < cuts_per_workload; ++i) {
      uint64_t cut = 1 + rng() % (full.boundaries + 1);
      Outcome o = run_trial({mode, workload, keys, cut, rng()});
      ++tried;
      if (!o.failure.empty()) {
        ++failed;
        if (failed <= 5) ADD_FAILURE() << o.failure;
        cleanup();
      }
    }
  }
  sluice::testing::report_points(suite, "crash points", tried, failed);
  EXPECT_EQ(failed, 0u);
}

// 2 x 4 x 75 = 600 cuts in a release build (~40 s).
constexpr int kCutsPerWorkload = sluice::testing::random_cut_budget(75);

TEST(RocksDbCrash, SyncedWritesSurviveRandomCuts) {
  random_cuts(Mode::sync_wal, "rocksdb on SluiceFS crash suite (sync=1)", 4, kCutsPerWorkload, 300);
}

TEST(RocksDbCrash, FlushedWritesWithoutWalSurviveRandomCuts) {
  random_cuts(Mode::no_wal_flush, "rocksdb on SluiceFS crash suite (WAL off, flushes)", 4, kCutsPerWorkload, 300);
}

}  // namespace
}  // namespace sluice::rocksdb_test
