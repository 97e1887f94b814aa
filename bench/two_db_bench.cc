// Two RocksDB databases in one process, as TiKV keeps them: a raft-log DB that takes small
// synced write batches (the log entries of each "ready"), and a KV DB that applies those
// entries afterwards in unsynced batches, with the applied log range deleted now and then.
// Reports the entries applied per second. Stock RocksDB: with --fs_uri (and the plugin
// loaded, LD_PRELOAD=libsluice_rocksdb.so) both DBs live on that file system, as db_bench's
// --fs_uri does; without it, on the kernel's.
//
//   two_db_bench --dir=DIR [--fs_uri=URI] [--seconds=5] [--batch=16] [--value=256]
// Driven by bench/two_db_bench.py, which runs it on SluiceFS and on ext4 over the same
// kind of device.
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

namespace {

struct Args {
  std::string dir = "/tmp/two_db_bench";
  std::string fs_uri;
  double seconds = 5;
  int batch = 16;    // raft entries per synced write
  int value = 256;   // bytes per entry
};

[[noreturn]] void die(const std::string& what, const rocksdb::Status& s) {
  std::fprintf(stderr, "two_db_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(0, eq), v = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (name == "--dir") {
      a.dir = v;
    } else if (name == "--fs_uri") {
      a.fs_uri = v;
    } else if (name == "--seconds") {
      a.seconds = std::atof(v.c_str());
    } else if (name == "--batch") {
      a.batch = std::atoi(v.c_str());
    } else if (name == "--value") {
      a.value = std::atoi(v.c_str());
    } else {
      std::fprintf(stderr, "usage: two_db_bench --dir=DIR [--fs_uri=URI] [--seconds=S] [--batch=N] [--value=BYTES]\n");
      std::exit(2);
    }
  }
  if (a.seconds <= 0 || a.seconds > 3600 || a.batch < 1 || a.batch > 4096 || a.value < 1 || a.value > (1 << 20)) {
    std::fprintf(stderr, "two_db_bench: --seconds in (0, 3600], --batch in [1, 4096], --value in [1, 1M]\n");
    std::exit(2);
  }
  return a;
}

std::unique_ptr<rocksdb::DB> open_db(const std::string& path, rocksdb::Env* env) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.env = env;
  o.compression = rocksdb::kNoCompression;
  o.write_buffer_size = 4 << 20;
  o.target_file_size_base = 4 << 20;
  o.max_bytes_for_level_base = 16 << 20;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, path, &db);
  if (!s.ok()) die("open " + path, s);
  return std::unique_ptr<rocksdb::DB>(db);
}

std::string raft_key(uint64_t index) {
  char k[32];
  std::snprintf(k, sizeof k, "raft/%016llx", static_cast<unsigned long long>(index));
  return k;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  rocksdb::Env* env = rocksdb::Env::Default();
  std::shared_ptr<rocksdb::Env> env_guard;
  if (!a.fs_uri.empty()) {
    rocksdb::Status s = rocksdb::Env::CreateFromUri(rocksdb::ConfigOptions(), "", a.fs_uri, &env, &env_guard);
    if (!s.ok()) die("--fs_uri " + a.fs_uri, s);
  }
  if (rocksdb::Status s = env->CreateDirIfMissing(a.dir); !s.ok()) die("mkdir " + a.dir, s);
  auto raft = open_db(a.dir + "/raft", env);
  auto kv = open_db(a.dir + "/kv", env);

  // Batches appended to the raft log and not yet applied: [first, last] entry indexes.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<uint64_t, uint64_t>> ready;
  bool stop = false;
  std::atomic<uint64_t> applied{0};
  const std::string value(static_cast<size_t>(a.value), 'v');

  std::thread raft_writer([&] {
    rocksdb::WriteOptions synced;
    synced.sync = true;
    uint64_t next = 1;
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(a.seconds);
    while (std::chrono::steady_clock::now() < end) {
      rocksdb::WriteBatch b;
      for (int i = 0; i < a.batch; ++i) b.Put(raft_key(next + i), value);
      rocksdb::Status s = raft->Write(synced, &b);
      if (!s.ok()) die("raft write", s);
      std::unique_lock lock(mu);
      // Bounded: the applier keeps up or the log writer waits (as TiKV's apply back-pressure).
      cv.wait(lock, [&] { return ready.size() < 64; });
      ready.emplace_back(next, next + a.batch - 1);
      next += a.batch;
      cv.notify_all();
    }
    std::lock_guard lock(mu);
    stop = true;
    cv.notify_all();
  });

  std::thread applier([&] {
    std::mt19937_64 rng(1);
    rocksdb::WriteOptions unsynced;
    uint64_t deleted_to = 1;
    for (;;) {
      std::pair<uint64_t, uint64_t> r;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return stop || !ready.empty(); });
        if (ready.empty()) return;
        r = ready.front();
        ready.pop_front();
        cv.notify_all();
      }
      rocksdb::WriteBatch b;
      char key[32];
      for (uint64_t i = r.first; i <= r.second; ++i) {
        std::snprintf(key, sizeof key, "kv/%016llx", static_cast<unsigned long long>(rng() % 1000000));
        b.Put(key, value);
      }
      rocksdb::Status s = kv->Write(unsynced, &b);
      if (!s.ok()) die("kv write", s);
      applied += r.second - r.first + 1;
      // The raft log is truncated behind the applied index, in steps.
      if (r.second + 1 - deleted_to >= 4096) {
        s = raft->DeleteRange(unsynced, raft->DefaultColumnFamily(), raft_key(deleted_to), raft_key(r.second + 1));
        if (!s.ok()) die("raft log truncation", s);
        deleted_to = r.second + 1;
      }
    }
  });

  const auto start = std::chrono::steady_clock::now();
  raft_writer.join();
  applier.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("applied %llu entries in %.3f s: %.0f entries/s (batch %d, value %d bytes)\n",
              static_cast<unsigned long long>(applied.load()), secs, applied.load() / secs, a.batch, a.value);
  rocksdb::Status s = raft->Close();
  if (s.ok()) s = kv->Close();
  if (!s.ok()) die("close", s);
  return 0;
}
