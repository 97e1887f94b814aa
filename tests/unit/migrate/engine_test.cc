// The migration engine on its own: the progress record (torn and malformed lines), the file
// list (CURRENT last, internal names left out), and copies from POSIX into SluiceFS that
// verify SST block checksums, stop where the test hook says and resume from the record.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_writer.h>

#include "migrate/copier.h"
#include "migrate/manifest.h"
#include "migrate/side.h"
#include "rocksdb/sluice_rocksdb.h"

namespace sluice::migrate {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-migrate-XXXXXX";
    tmp_ = mkdtemp(tmpl);
    std::filesystem::create_directories(tmp_ + "/src");
    src_ = Side{::rocksdb::FileSystem::Default(), tmp_ + "/src", "src"};
    std::shared_ptr<::rocksdb::FileSystem> fs;
    ASSERT_TRUE(rocksdb_plugin::NewFileSystem("sluice://malloc:64M", &fs).ok());
    dst_ = Side{fs, "/db", "dst"};
    ASSERT_TRUE(fs->CreateDirIfMissing("/db", {}, nullptr).ok());
  }
  void TearDown() override {
    dst_.fs.reset();
    std::error_code ec;
    std::filesystem::remove_all(tmp_, ec);
  }
  void put(const std::string& name, const std::string& data) {
    std::ofstream(src_.dir + "/" + name, std::ios::binary) << data;
  }
  void put_sst(const std::string& name) {
    ::rocksdb::Options o;
    ::rocksdb::SstFileWriter w(::rocksdb::EnvOptions(), o);
    ASSERT_TRUE(w.Open(src_.dir + "/" + name).ok());
    for (int i = 0; i < 2000; ++i)
      ASSERT_TRUE(w.Put("key" + std::to_string(100000 + i), std::string(100, static_cast<char>('a' + i % 26))).ok());
    ASSERT_TRUE(w.Finish().ok());
  }
  std::vector<FileEntry> files() {
    auto l = list_files(src_, nullptr);
    EXPECT_TRUE(l.ok()) << l.status().to_string();
    return l.ok() ? *l : std::vector<FileEntry>{};
  }

  std::string tmp_;
  Side src_, dst_;
};

TEST_F(EngineTest, ListPutsCurrentLastAndLeavesInternalNamesOut) {
  for (const char* n : {"CURRENT", "LOG", "000001.sst", "SLUICE-MIGRATE", "SLUICE-FALLBACK", "000002.sst.migrating"})
    put(n, "x");
  std::filesystem::create_directories(src_.dir + "/archive");
  std::vector<std::string> subdirs;
  auto l = list_files(src_, &subdirs);
  ASSERT_TRUE(l.ok());
  std::vector<std::string> names;
  for (const auto& f : *l) names.push_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"000001.sst", "LOG", "CURRENT"}));
  EXPECT_EQ(subdirs, std::vector<std::string>{"archive"});
}

TEST_F(EngineTest, ManifestIgnoresTornAndMalformedLines) {
  Manifest m;
  ASSERT_TRUE(m.start(dst_, "/some/source").ok());
  ASSERT_TRUE(m.add("000001.sst", 10, 0xdeadbeef).ok());
  ASSERT_TRUE(m.add("LOG", 3, 7).ok());
  ASSERT_TRUE(m.remove(dst_).ok());  // closes; then write a record by hand
  std::unique_ptr<::rocksdb::FSWritableFile> f;
  ASSERT_TRUE(dst_.fs->NewWritableFile("/db/SLUICE-MIGRATE", {}, &f, nullptr).ok());
  ASSERT_TRUE(f->Append("sluice-migrate 1 /some/source\ndeadbeef 10 000001.sst\nzz 1 bad\n0000000a 5 torn", {},
                        nullptr).ok());
  ASSERT_TRUE(f->Close({}, nullptr).ok());
  auto loaded = Manifest::load(dst_);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_TRUE(loaded->found());
  EXPECT_EQ(loaded->source(), "/some/source");
  EXPECT_EQ(loaded->size(), 1u);
  ASSERT_NE(loaded->find("000001.sst"), nullptr);
  EXPECT_EQ(loaded->find("000001.sst")->crc, 0xdeadbeefu);
  EXPECT_EQ(loaded->find("torn"), nullptr);
}

TEST_F(EngineTest, InterruptedCopyResumesFromTheRecord) {
  put_sst("000001.sst");
  put_sst("000002.sst");
  put("CURRENT", "MANIFEST-000001\n");
  Manifest m;
  ASSERT_TRUE(m.start(dst_, "src").ok());
  CopyOptions opts;
  opts.manifest = &m;
  opts.fail_after = 1;
  auto first = copy_files(src_, dst_, files(), opts);
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.status().message().find("000002.sst"), std::string::npos) << first.status().message();
  EXPECT_TRUE(dst_.fs->FileExists("/db/000001.sst", {}, nullptr).ok());
  EXPECT_FALSE(dst_.fs->FileExists("/db/000002.sst", {}, nullptr).ok());  // only its partial

  auto again = Manifest::load(dst_);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->size(), 1u);
  ASSERT_TRUE(again->start(dst_, "src").ok());
  opts.manifest = &*again;
  opts.fail_after = -1;
  auto second = copy_files(src_, dst_, files(), opts);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ(second->skipped, 1u);
  EXPECT_EQ(second->files, 2u);
}

TEST_F(EngineTest, CorruptSstFailsNamingIt) {
  put_sst("000003.sst");
  const std::string path = src_.dir + "/000003.sst";
  const auto size = std::filesystem::file_size(path);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size / 3));
    f.put('\x5a');
  }
  auto r = copy_files(src_, dst_, files(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Errc::corrupt);
  EXPECT_NE(r.status().message().find("000003.sst"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos) << r.status().message();
  EXPECT_FALSE(dst_.fs->FileExists("/db/000003.sst", {}, nullptr).ok());
  EXPECT_FALSE(dst_.fs->FileExists("/db/000003.sst.migrating", {}, nullptr).ok());  // cleaned up
}

}  // namespace
}  // namespace sluice::migrate
