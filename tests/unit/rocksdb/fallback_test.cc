// Fallback mode (URI option fallback=/DIR, src/rocksdb/fallback.h): reads fall back to the
// kernel directory, listings merge, new files and deletions stay in SluiceFS (the kernel
// directory is never written), tombstones and "finished" survive a remount.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <rocksdb/file_system.h>

#include "rocksdb/sluice_file_system.h"
#include "rocksdb/sluice_rocksdb.h"
#include "rocksdb/sluice_uri.h"

namespace sluice::rocksdb_plugin {
namespace {

class FallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-fallback-XXXXXX";
    tmp_ = mkdtemp(tmpl);
    kernel_ = tmp_ + "/db";
    std::filesystem::create_directories(kernel_);
    put_kernel("CURRENT", "MANIFEST-000001\n");
    put_kernel("000007.sst", "kernel sst");
    put_kernel("LOG", "kernel log");
    std::ofstream(tmp_ + "/image").close();
    std::filesystem::resize_file(tmp_ + "/image", 64u << 20);
  }
  void TearDown() override {
    fs_.reset();
    std::error_code ec;
    std::filesystem::remove_all(tmp_, ec);
  }
  void put_kernel(const std::string& name, const std::string& data) {
    std::ofstream(kernel_ + "/" + name, std::ios::binary) << data;
  }
  std::string kernel_content(const std::string& name) {
    std::ifstream in(kernel_ + "/" + name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  // (Re)mounts: dropping the only FileSystem unmounts, so a remount reads what is durable.
  void mount() {
    fs_.reset();
    ASSERT_TRUE(NewFileSystem(fmt_uri(), &fs_).ok());
  }
  std::string fmt_uri() const { return "sluice://uring:" + tmp_ + "/image?format=1&fallback=" + kernel_; }
  std::string p(const std::string& name) const { return kernel_ + "/" + name; }
  std::string read(const std::string& name) {
    std::unique_ptr<::rocksdb::FSSequentialFile> f;
    ::rocksdb::IOStatus s = fs_->NewSequentialFile(p(name), {}, &f, nullptr);
    if (!s.ok()) return "<" + s.ToString() + ">";
    char buf[256];
    ::rocksdb::Slice got;
    EXPECT_TRUE(f->Read(sizeof(buf), {}, &got, buf, nullptr).ok());
    return got.ToString();
  }
  void write(const std::string& name, const std::string& data) {
    std::unique_ptr<::rocksdb::FSWritableFile> f;
    ASSERT_TRUE(fs_->NewWritableFile(p(name), {}, &f, nullptr).ok()) << name;
    ASSERT_TRUE(f->Append(data, {}, nullptr).ok());
    ASSERT_TRUE(f->Sync({}, nullptr).ok());
    ASSERT_TRUE(f->Close({}, nullptr).ok());
  }
  std::vector<std::string> children() {
    std::vector<std::string> out;
    EXPECT_TRUE(fs_->GetChildren(kernel_, {}, &out, nullptr).ok());
    return out;
  }
  Fallback& fallback() { return *dynamic_cast<SluiceFileSystem&>(*fs_).fallback(); }

  std::string tmp_, kernel_;
  std::shared_ptr<::rocksdb::FileSystem> fs_;
};

using Names = std::vector<std::string>;

TEST(FallbackUri, ParsedNormalizedAndChecked) {
  auto u = parse_uri("sluice://malloc:16M?fallback=/var//lib/db/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->fallback, "/var/lib/db");
  EXPECT_FALSE(parse_uri("sluice://malloc:16M?fallback=db").ok());
  EXPECT_FALSE(parse_uri("sluice://malloc:16M?fallback=/a&wal_dir=/w").ok());
  std::shared_ptr<::rocksdb::FileSystem> fs;
  ::rocksdb::Status s = NewFileSystem("sluice://malloc:16M?root=/p&fallback=/q", &fs);
  EXPECT_NE(s.ToString().find("not under root"), std::string::npos) << s.ToString();
}

TEST_F(FallbackTest, ReadsFallBackAndNewFilesGoToSluiceFS) {
  mount();
  EXPECT_TRUE(fs_->FileExists(p("CURRENT"), {}, nullptr).ok());
  EXPECT_EQ(read("000007.sst"), "kernel sst");
  uint64_t size = 0;
  ASSERT_TRUE(fs_->GetFileSize(p("000007.sst"), {}, &size, nullptr).ok());
  EXPECT_EQ(size, 10u);
  EXPECT_TRUE(fs_->FileExists(p("missing"), {}, nullptr).IsNotFound());
  ASSERT_TRUE(fs_->CreateDirIfMissing(kernel_, {}, nullptr).ok());
  write("000009.sst", "new");
  write("CURRENT", "MANIFEST-000010\n");  // shadows the kernel's
  EXPECT_EQ(read("CURRENT"), "MANIFEST-000010\n");
  EXPECT_EQ(kernel_content("CURRENT"), "MANIFEST-000001\n");
  EXPECT_FALSE(std::filesystem::exists(p("000009.sst")));
  EXPECT_EQ(children(), (Names{"000007.sst", "000009.sst", "CURRENT", "LOG"}));
  auto left = fallback().remaining();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 2u);  // CURRENT is shadowed
  EXPECT_EQ((*left)[0].name, "000007.sst");
  EXPECT_EQ((*left)[1].name, "LOG");
}

TEST_F(FallbackTest, DeletesAreDurableTombstonesAndRenamesCopyIn) {
  mount();
  ASSERT_TRUE(fs_->CreateDirIfMissing(kernel_, {}, nullptr).ok());
  ASSERT_TRUE(fs_->DeleteFile(p("000007.sst"), {}, nullptr).ok());
  write("CURRENT", "MANIFEST-000010\n");
  ASSERT_TRUE(fs_->DeleteFile(p("CURRENT"), {}, nullptr).ok());  // the shadow and the original
  ASSERT_TRUE(fs_->RenameFile(p("LOG"), p("LOG.old.1"), {}, nullptr).ok());
  EXPECT_TRUE(fs_->DeleteFile(p("nothing"), {}, nullptr).IsPathNotFound());
  mount();
  EXPECT_TRUE(fs_->FileExists(p("000007.sst"), {}, nullptr).IsNotFound());
  EXPECT_TRUE(fs_->FileExists(p("CURRENT"), {}, nullptr).IsNotFound());
  EXPECT_EQ(read("LOG.old.1"), "kernel log");
  EXPECT_EQ(children(), (Names{"LOG.old.1"}));
  EXPECT_EQ(kernel_content("000007.sst"), "kernel sst");  // never touched
  EXPECT_EQ(kernel_content("CURRENT"), "MANIFEST-000001\n");
  EXPECT_EQ(kernel_content("LOG"), "kernel log");
  auto left = fallback().remaining();
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

TEST_F(FallbackTest, FinishedMakesTheOptionANoOp) {
  mount();
  ASSERT_TRUE(fs_->CreateDirIfMissing(kernel_, {}, nullptr).ok());
  write("000007.sst", "copied");
  ASSERT_TRUE(fallback().finish().ok());
  mount();
  auto finished = fallback().finished();
  ASSERT_TRUE(finished.ok());
  EXPECT_TRUE(*finished);
  EXPECT_EQ(read("000007.sst"), "copied");
  EXPECT_TRUE(fs_->FileExists(p("LOG"), {}, nullptr).IsNotFound());
  EXPECT_EQ(children(), (Names{"000007.sst"}));  // the record stays hidden
}

// fallback= that names another directory than the database RocksDB opens would do nothing at
// all: opening that database fails with a message instead, and the fallback's own database
// is untouched by the check.
TEST_F(FallbackTest, ADatabaseElsewhereIsRefused) {
  mount();
  const std::string other = tmp_ + "/other";
  std::unique_ptr<::rocksdb::FSWritableFile> w;
  ::rocksdb::IOStatus s = fs_->NewWritableFile(other + "/MANIFEST-000001", {}, &w, nullptr);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.ToString().find("fallback=" + kernel_ + " does not name this database"), std::string::npos)
      << s.ToString();
  EXPECT_NE(s.ToString().find("the database is " + other), std::string::npos) << s.ToString();
  std::unique_ptr<::rocksdb::FSSequentialFile> r;
  EXPECT_TRUE(fs_->NewSequentialFile(other + "/CURRENT", {}, &r, nullptr).IsInvalidArgument());
  // Other files elsewhere (an info log, a backup's SSTs) are not a database's identity.
  ASSERT_TRUE(fs_->CreateDirIfMissing(other, {}, nullptr).ok());
  EXPECT_TRUE(fs_->NewWritableFile(other + "/LOG", {}, &w, nullptr).ok());
  // The database of the fallback directory opens as before.
  EXPECT_EQ(read("CURRENT"), "MANIFEST-000001\n");
  ASSERT_TRUE(fs_->CreateDirIfMissing(kernel_, {}, nullptr).ok());
  write("MANIFEST-000002", "m");
}

}  // namespace
}  // namespace sluice::rocksdb_plugin
