// A RocksDB database that filled its SluiceFS device: writes fail with "no space", yet after
// a close it reopens read-write (new LOG, MANIFEST, OPTIONS, WAL), deletes a range, compacts
// the space free and takes writes again. The free-space reserve (src/fs/reserve.h) is what
// makes the reopen possible.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include "rocksdb/sluice_rocksdb.h"

namespace sluice::rocksdb_test {
namespace {

constexpr uint64_t kImageBytes = 64u << 20;
constexpr size_t kValueBytes = 4096;

std::string key(int i) { return fmt::format("key{:08}", i); }

// Bytes that differ per key and do not compress.
std::string value(int i) {
  std::string v(kValueBytes, '\0');
  uint64_t x = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull + 1;
  for (char& c : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  return v;
}

class FullDb : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-fulldb-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    image_ = tmp_ + "/image";
    std::ofstream{image_};
    std::filesystem::resize_file(image_, kImageBytes);
  }
  void TearDown() override {
    unmount();
    std::error_code ec;
    std::filesystem::remove_all(tmp_, ec);
  }

  // A mount of its own each time: the plugin unmounts a device with its last user.
  void mount() {
    ::rocksdb::Status s = rocksdb_plugin::NewFileSystem("sluice://uring:" + image_ + "?format=1", &fs_);
    ASSERT_TRUE(s.ok()) << s.ToString();
    env_ = ::rocksdb::NewCompositeEnv(fs_);
  }
  void unmount() {
    if (db_) (void)db_->Close();  // after a write error it reports that error again
    db_.reset();
    env_.reset();
    fs_.reset();
  }

  ::rocksdb::Status open() {
    ::rocksdb::Options o;
    o.env = env_.get();
    o.create_if_missing = true;
    o.compression = ::rocksdb::kNoCompression;
    // Memtables and files past SluiceFS's first preallocation step, so that WALs and SSTs
    // grow as ordinary files do, and a few levels' worth of compaction.
    o.write_buffer_size = 2 << 20;
    o.target_file_size_base = 2 << 20;
    o.max_bytes_for_level_base = 8 << 20;
    ::rocksdb::DB* db = nullptr;
    ::rocksdb::Status s = ::rocksdb::DB::Open(o, "/db", &db);
    db_.reset(db);
    return s;
  }

  uint64_t free_space() {
    uint64_t free = 0;
    EXPECT_TRUE(fs_->GetFreeSpace("/db", {}, &free, nullptr).ok());
    return free;
  }

  // Appends to a new file until the file system refuses.
  void take_the_rest(const std::string& path) {
    std::unique_ptr<::rocksdb::FSWritableFile> f;
    ASSERT_TRUE(fs_->NewWritableFile(path, {}, &f, nullptr).ok());
    const std::string piece = value(-1).substr(0, 4096);
    ::rocksdb::IOStatus s;
    for (int i = 0; i < static_cast<int>(kImageBytes / piece.size()) && s.ok(); ++i) s = f->Append(piece, {}, nullptr);
    EXPECT_TRUE(s.IsNoSpace()) << s.ToString();
    EXPECT_TRUE(f->Close({}, nullptr).ok());
  }

  std::string get(int i) {
    std::string v;
    ::rocksdb::Status s = db_->Get({}, key(i), &v);
    return s.ok() ? v : "<" + s.ToString() + ">";
  }

  std::string tmp_, image_;
  std::shared_ptr<::rocksdb::FileSystem> fs_;
  std::unique_ptr<::rocksdb::Env> env_;
  std::unique_ptr<::rocksdb::DB> db_;
};

TEST_F(FullDb, ReopensDeletesCompactsAndWritesAgain) {
  mount();
  ASSERT_TRUE(open().ok());
  // Fill until a write fails: on the write itself or, once a flush or compaction failed, as
  // the background error every later write returns.
  int written = 0;
  ::rocksdb::Status failed;
  for (; written < 4 * static_cast<int>(kImageBytes / kValueBytes); ++written) {
    failed = db_->Put({}, key(written), value(written));
    if (!failed.ok()) break;
  }
  ASSERT_FALSE(failed.ok()) << "the device never filled";
  EXPECT_TRUE(failed.IsNoSpace() || failed.ToString().find("space") != std::string::npos) << failed.ToString();
  (void)db_->Close();  // after the failure it reports the failure again
  db_.reset();
  // Where RocksDB's last allocation failed with some space to spare (a whole step that did
  // not fit), a file beside the database takes the rest, as another database would.
  take_the_rest("/filler");
  EXPECT_LT(free_space(), 1u << 20);
  unmount();

  mount();
  ::rocksdb::Status s = open();
  ASSERT_TRUE(s.ok()) << "a full database does not reopen: " << s.ToString();
  EXPECT_EQ(get(0), value(0));
  const int keep = written / 4;
  ASSERT_TRUE(db_->DeleteRange({}, db_->DefaultColumnFamily(), key(keep), key(written)).ok());
  s = db_->CompactRange({}, nullptr, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_GT(free_space(), kImageBytes / 4) << "the compaction gave no space back";
  for (int i = written; i < written + 1000; ++i) ASSERT_TRUE(db_->Put({}, key(i), value(i)).ok()) << i;
  ASSERT_TRUE(db_->Flush({}).ok());
  unmount();

  mount();
  ASSERT_TRUE(open().ok());
  EXPECT_EQ(get(keep - 1), value(keep - 1));
  EXPECT_EQ(get(keep), "<NotFound: >");
  EXPECT_EQ(get(written + 999), value(written + 999));
}

}  // namespace
}  // namespace sluice::rocksdb_test
