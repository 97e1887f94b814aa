// RocksDB itself on each backend: open, writes, flush, compaction, reopen, iteration,
// DeleteRange, MultiGet, Checkpoint, and several DBs in one SluiceFS image.
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include "backends.h"

namespace sluice::rocksdb_test {
namespace {

std::string key(int i) { return fmt::format("key{:06}", i); }
std::string value(int i, int round = 0) { return fmt::format("value-{}-{}-{}", i, round, std::string(100, 'v')); }

// One mount per backend for the whole suite, a directory per test: mounting is the slow part,
// and every test opening its own DBs in one store is how RocksDB users share a device.
class DbOnBackend : public testing::TestWithParam<Backend> {
 protected:
  static std::map<std::string, std::unique_ptr<OpenBackend>>& backends() {
    static std::map<std::string, std::unique_ptr<OpenBackend>> open;
    return open;
  }
  static void TearDownTestSuite() { backends().clear(); }

  void SetUp() override {
    auto& slot = backends()[GetParam().name];
    if (!slot) slot = std::make_unique<OpenBackend>(GetParam());
    b_ = slot.get();
    ASSERT_TRUE(b_->error.empty()) << b_->error;
    env_ = ::rocksdb::NewCompositeEnv(b_->fs);
    dir_ = b_->path(testing::UnitTest::GetInstance()->current_test_info()->name());
    dir_ = dir_.substr(0, dir_.find('/', b_->dir.size() + 1));  // drop "/<param>"
    ASSERT_TRUE(b_->fs->CreateDirIfMissing(dir_, {}, nullptr).ok());
  }
  void TearDown() override { env_.reset(); }

  ::rocksdb::Options options() {
    ::rocksdb::Options o;
    o.env = env_.get();
    o.create_if_missing = true;
    o.write_buffer_size = 256 << 10;  // small memtables: several flushes and SSTs
    o.target_file_size_base = 256 << 10;
    o.max_bytes_for_level_base = 1 << 20;
    return o;
  }

  std::unique_ptr<::rocksdb::DB> open(const std::string& name, ::rocksdb::Options o) {
    ::rocksdb::DB* db = nullptr;
    ::rocksdb::Status s = ::rocksdb::DB::Open(o, path(name), &db);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::unique_ptr<::rocksdb::DB>(db);
  }
  std::unique_ptr<::rocksdb::DB> open(const std::string& name) { return open(name, options()); }

  static std::string get(::rocksdb::DB* db, const std::string& k) {
    std::string v;
    ::rocksdb::Status s = db->Get({}, k, &v);
    return s.ok() ? v : s.IsNotFound() ? "<none>" : "<error " + s.ToString() + ">";
  }

  static void fill(::rocksdb::DB* db, int n, int round) {
    ::rocksdb::WriteOptions wo;
    for (int i = 0; i < n; i += 10) {
      ::rocksdb::WriteBatch batch;
      for (int j = i; j < i + 10 && j < n; ++j) ASSERT_TRUE(batch.Put(key(j), value(j, round)).ok());
      ASSERT_TRUE(db->Write(wo, &batch).ok());
    }
  }

  static int count(::rocksdb::DB* db) {
    std::unique_ptr<::rocksdb::Iterator> it(db->NewIterator({}));
    int n = 0;
    std::string prev;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      EXPECT_LT(prev, it->key().ToString());
      prev = it->key().ToString();
      ++n;
    }
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    return n;
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  OpenBackend* b_ = nullptr;
  std::unique_ptr<::rocksdb::Env> env_;
  std::string dir_;
};

TEST_P(DbOnBackend, WritesFlushCompactReopenIterate) {
  {
    auto db = open("db");
    ASSERT_TRUE(db);
    fill(db.get(), 5000, 0);
    fill(db.get(), 5000, 1);  // overwrites: compaction has garbage to drop
    ASSERT_TRUE(db->Flush({}).ok());
    ASSERT_TRUE(db->CompactRange({}, nullptr, nullptr).ok());
    EXPECT_EQ(get(db.get(), key(1234)), value(1234, 1));
    ASSERT_TRUE(db->Put({}, "unflushed", "in the WAL").ok());
    ASSERT_TRUE(db->Close().ok());
  }
  auto db = open("db");
  ASSERT_TRUE(db);
  EXPECT_EQ(count(db.get()), 5001);
  EXPECT_EQ(get(db.get(), key(0)), value(0, 1));
  EXPECT_EQ(get(db.get(), key(4999)), value(4999, 1));
  EXPECT_EQ(get(db.get(), "unflushed"), "in the WAL");
  std::unique_ptr<::rocksdb::Iterator> it(db->NewIterator({}));
  it->Seek(key(2500));
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key().ToString(), key(2500));
  it->Prev();
  ASSERT_TRUE(it->Valid());
  EXPECT_EQ(it->key().ToString(), key(2499));
}

TEST_P(DbOnBackend, DeleteRangeAndMultiGet) {
  auto db = open("db");
  ASSERT_TRUE(db);
  fill(db.get(), 3000, 0);
  ASSERT_TRUE(db->Flush({}).ok());
  ASSERT_TRUE(db->DeleteRange({}, db->DefaultColumnFamily(), key(1000), key(2000)).ok());
  ASSERT_TRUE(db->Flush({}).ok());
  EXPECT_EQ(count(db.get()), 2000);
  EXPECT_EQ(get(db.get(), key(999)), value(999, 0));
  EXPECT_EQ(get(db.get(), key(1000)), "<none>");
  EXPECT_EQ(get(db.get(), key(2000)), value(2000, 0));

  // Batched MultiGet: the table reader's MultiRead path.
  std::vector<std::string> keys = {key(5), key(1500), key(2999), key(10), "missing", key(2001)};
  std::vector<::rocksdb::Slice> ks(keys.begin(), keys.end());
  std::vector<::rocksdb::PinnableSlice> values(keys.size());
  std::vector<::rocksdb::Status> statuses(keys.size());
  db->MultiGet({}, db->DefaultColumnFamily(), ks.size(), ks.data(), values.data(), statuses.data(), false);
  EXPECT_EQ(values[0].ToString(), value(5, 0));
  EXPECT_TRUE(statuses[1].IsNotFound());
  EXPECT_EQ(values[2].ToString(), value(2999, 0));
  EXPECT_EQ(values[3].ToString(), value(10, 0));
  EXPECT_TRUE(statuses[4].IsNotFound());
  EXPECT_EQ(values[5].ToString(), value(2001, 0));
}

TEST_P(DbOnBackend, DirectIoAndAsyncReads) {
  auto o = options();
  o.use_direct_reads = true;
  o.use_direct_io_for_flush_and_compaction = true;
  auto db = open("db", o);
  ASSERT_TRUE(db);
  fill(db.get(), 4000, 0);
  ASSERT_TRUE(db->Flush({}).ok());
  ASSERT_TRUE(db->CompactRange({}, nullptr, nullptr).ok());
  ::rocksdb::ReadOptions ro;
  ro.async_io = true;
  ro.readahead_size = 64 << 10;
  std::unique_ptr<::rocksdb::Iterator> it(db->NewIterator(ro));
  int n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->value() != value(n, 0)) break;
    ++n;
  }
  EXPECT_TRUE(it->status().ok()) << it->status().ToString();
  EXPECT_EQ(n, 4000);
}

TEST_P(DbOnBackend, Checkpoint) {
  auto db = open("db");
  ASSERT_TRUE(db);
  fill(db.get(), 2000, 0);
  ASSERT_TRUE(db->Flush({}).ok());
  ASSERT_TRUE(db->Put({}, "after flush", "x").ok());
  ::rocksdb::Checkpoint* cp = nullptr;
  ASSERT_TRUE(::rocksdb::Checkpoint::Create(db.get(), &cp).ok());
  std::unique_ptr<::rocksdb::Checkpoint> checkpoint(cp);
  // SluiceFS has no hard links (LinkFile is NotSupported): RocksDB copies instead.
  ::rocksdb::Status s = checkpoint->CreateCheckpoint(path("snap"));
  ASSERT_TRUE(s.ok()) << s.ToString();
  fill(db.get(), 2000, 1);  // later writes stay out of the checkpoint
  auto snap = open("snap");
  ASSERT_TRUE(snap);
  EXPECT_EQ(count(snap.get()), 2001);
  EXPECT_EQ(get(snap.get(), key(7)), value(7, 0));
  EXPECT_EQ(get(snap.get(), "after flush"), "x");
}

TEST_P(DbOnBackend, SeveralDbsSideBySide) {
  auto a = open("a");
  auto b = open("b");
  ASSERT_TRUE(a && b);
  fill(a.get(), 1000, 1);
  fill(b.get(), 1500, 2);
  ASSERT_TRUE(a->Flush({}).ok());
  ASSERT_TRUE(b->Flush({}).ok());
  EXPECT_EQ(count(a.get()), 1000);
  EXPECT_EQ(count(b.get()), 1500);
  EXPECT_EQ(get(a.get(), key(5)), value(5, 1));
  EXPECT_EQ(get(b.get(), key(5)), value(5, 2));
  // Opening a DB twice is refused by its LOCK.
  ::rocksdb::DB* again = nullptr;
  EXPECT_FALSE(::rocksdb::DB::Open(options(), path("a"), &again).ok());
  delete again;
}

INSTANTIATE_TEST_SUITE_P(Backends, DbOnBackend, testing::ValuesIn(all_backends()), backend_name);

}  // namespace
}  // namespace sluice::rocksdb_test
