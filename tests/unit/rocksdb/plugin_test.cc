// What only the plugin has: its URI, the factories the stock tools use, one shared mount per
// device, root= fall-through to POSIX and wal_dir= WAL placement, and error messages.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include <gtest/gtest.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include "bdev/bdev.h"
#include "blob/blob.h"
#include "fs/fs.h"
#include "lvol/lvol.h"
#include "rocksdb/sluice_rocksdb.h"
#include "rocksdb/sluice_uri.h"

#include "temp_dir.h"
#include "temp_file.h"

namespace sluice::rocksdb_plugin {
namespace {

using ::rocksdb::IOOptions;
using sluice::testing::patch_image;
using sluice::testing::read_image;
using sluice::testing::TempDir;

std::string error_of(const std::string& uri) {
  std::shared_ptr<::rocksdb::FileSystem> fs;
  ::rocksdb::Status s = NewFileSystem(uri, &fs);
  EXPECT_FALSE(s.ok()) << uri;
  EXPECT_EQ(fs, nullptr);
  return s.ToString();
}

void write(::rocksdb::FileSystem& fs, const std::string& path, const std::string& data) {
  std::unique_ptr<::rocksdb::FSWritableFile> f;
  ASSERT_TRUE(fs.NewWritableFile(path, {}, &f, nullptr).ok()) << path;
  ASSERT_TRUE(f->Append(data, {}, nullptr).ok());
  ASSERT_TRUE(f->Close({}, nullptr).ok());
}

TEST(PluginUri, SplitsPluginOptionsFromDeviceOptions) {
  auto u = parse_uri(
      "sluice://uring:/dev/nvme0n1?bs=4096&cache=64M&root=/data/&wal_dir=/var//wal&format=1&qd=64&reserve=16M");
  ASSERT_TRUE(u.ok()) << u.status().to_string();
  EXPECT_EQ(u->device, "uring:/dev/nvme0n1?bs=4096&qd=64");
  EXPECT_EQ(u->cache_bytes, 64u << 20);
  EXPECT_EQ(u->reserve_bytes, 16u << 20);
  EXPECT_EQ(u->root, "/data");
  EXPECT_EQ(u->wal_dir, "/var/wal");
  EXPECT_TRUE(u->format);
  auto plain = parse_uri("sluice://mydisk");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->device, "mydisk");
  EXPECT_EQ(plain->root, "/");
  EXPECT_FALSE(plain->format);
  EXPECT_FALSE(plain->reserve_bytes.has_value());  // the file system's default
}

TEST(PluginUri, RejectsMalformedUris) {
  EXPECT_FALSE(parse_uri("posix:///tmp").ok());
  EXPECT_FALSE(parse_uri("sluice://").ok());
  EXPECT_FALSE(parse_uri("sluice://?cache=1M").ok());
  EXPECT_FALSE(parse_uri("sluice://malloc:8M?cache=lots").ok());
  EXPECT_FALSE(parse_uri("sluice://malloc:8M?format=yes").ok());
  EXPECT_FALSE(parse_uri("sluice://malloc:8M?reserve=some").ok());
  EXPECT_FALSE(parse_uri("sluice://malloc:8M?root=relative").ok());
  EXPECT_FALSE(parse_uri("sluice://malloc:8M?wal_dir=").ok());
  EXPECT_FALSE(parse_uri("sluice://malloc:8M?novalue").ok());
  auto twice = parse_uri("sluice://malloc:8M?cache=1M&format=1&cache=2M");
  EXPECT_NE(twice.status().message().find("option 'cache' is given twice"), std::string::npos) << twice.status().to_string();
  EXPECT_FALSE(parse_uri("sluice://malloc:8M?qd=8&qd=16").ok());  // device options too
  auto huge = parse_uri("sluice://malloc:8M?cache=100T");
  EXPECT_NE(huge.status().message().find("more than this machine's memory"), std::string::npos)
      << huge.status().to_string();
  EXPECT_EQ(normalize_path("a//b/"), "/a/b");
  EXPECT_EQ(normalize_path("//"), "/");
}

TEST(PluginOpen, FailuresSayWhatIsWrong) {
  TempDir tmp;
  EXPECT_NE(error_of("sluice://uring:" + tmp.path() + "/missing").find("cannot open device"), std::string::npos);
  EXPECT_NE(error_of("sluice://floppy:/dev/fd0").find("unknown device type"), std::string::npos);
  EXPECT_NE(error_of("sluice://malloc:16M?cache=lots").find("cache"), std::string::npos);
  EXPECT_NE(error_of("sluice://no_such_bdev").find("no_such_bdev"), std::string::npos);
  std::string blank = tmp.path() + "/blank";
  std::filesystem::resize_file((std::ofstream(blank), blank), 32u << 20);
  std::string msg = error_of("sluice://uring:" + blank);
  EXPECT_NE(msg.find("not a SluiceFS image: the device is blank"), std::string::npos) << msg;
  EXPECT_NE(msg.find("format=1"), std::string::npos) << msg;
  // With format=1 it is formatted, and the next mount finds the image.
  {
    std::shared_ptr<::rocksdb::FileSystem> fs;
    ASSERT_TRUE(NewFileSystem("sluice://uring:" + blank + "?format=1", &fs).ok());
    write(*fs, "/kept", "across mounts");
  }
  std::shared_ptr<::rocksdb::FileSystem> fs;
  ASSERT_TRUE(NewFileSystem("sluice://uring:" + blank, &fs).ok());
  uint64_t size = 0;
  ASSERT_TRUE(fs->GetFileSize("/kept", {}, &size, nullptr).ok());
  EXPECT_EQ(size, 13u);
}

// A bdev on `path` for the life of a scope.
class Dev {
 public:
  explicit Dev(const std::string& path) {
    auto n = bdev::create("uring:" + path, "");
    EXPECT_TRUE(n.ok()) << n.status().to_string();
    if (n.ok()) name_ = *n;
  }
  ~Dev() {
    if (!name_.empty()) (void)bdev::unregister(name_);
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

// format=1 formats a blank device and nothing else: each of these is refused with a message
// that names what the device holds, and not one byte of it changes.
TEST(PluginOpen, FormatOneLeavesWhatIsNotBlank) {
  TempDir tmp;
  struct Case {
    std::string name;
    std::function<void(const std::string& path)> make;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"an lvol store",
       [](const std::string& path) {
         Dev d(path);
         auto lvs = lvol::LvolStore::create(d.name(), "pool", 1u << 20);
         ASSERT_TRUE(lvs.ok()) << lvs.status().to_string();
         ASSERT_TRUE((*lvs)->create_volume("db", 4u << 20).ok());
         ASSERT_TRUE((*lvs)->unload().ok());
       },
       "lvol store 'pool' with 1 volume(s) (db)"},
      {"another user's blobstore",
       [](const std::string& path) {
         Dev d(path);
         auto bs = blob::Blobstore::init(d.name());
         ASSERT_TRUE(bs.ok()) << bs.status().to_string();
         auto id = (*bs)->create({});
         ASSERT_TRUE(id.ok());
         ASSERT_TRUE((*bs)->set_xattr(*id, "acme.db", "1", true).ok());
         ASSERT_TRUE((*bs)->set_super_blob(*id).ok());
         ASSERT_TRUE((*bs)->unload().ok());
       },
       "attributes: acme.db"},
      {"a SluiceFS with damaged super blocks",
       [](const std::string& path) {
         ASSERT_TRUE(fs::FileSystem::format("uring:" + path).ok());
         patch_image(path, 100, "garbage");
         patch_image(path, 4096 + 100, "garbage");
       },
       "super block damaged (both copies); a checkpoint survives: run `sluice blob repair"},
      {"a SluiceFS with zeroed super blocks",
       [](const std::string& path) {
         ASSERT_TRUE(fs::FileSystem::format("uring:" + path).ok());
         patch_image(path, 0, std::string(8192, '\0'));
       },
       "super block damaged (both copies); a checkpoint survives: run `sluice blob repair"},
      {"random bytes",
       [](const std::string& path) {
         std::string junk(1u << 20, '\0');
         uint64_t x = 88172645463325252ull;
         for (auto& c : junk) c = static_cast<char>((x ^= x << 13, x ^= x >> 7, x ^= x << 17));
         patch_image(path, 0, junk);
       },
       "data of an unknown kind"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = tmp.path() + "/img";
    std::filesystem::remove(path);
    std::filesystem::resize_file((std::ofstream(path), path), 32u << 20);
    c.make(path);
    const std::string before = read_image(path);
    const std::string msg = error_of("sluice://uring:" + path + "?format=1");
    EXPECT_NE(msg.find(c.says), std::string::npos) << msg;
    if (std::string_view(c.says).find("checkpoint survives") != std::string_view::npos) {
      EXPECT_EQ(msg.find("format=1"), std::string::npos) << "a repairable store must not be offered format=1: " << msg;
    }
    EXPECT_TRUE(read_image(path) == before) << "format=1 changed the device";
  }
}

TEST(PluginRegistry, StockLoadersFindTheScheme) {
  RegisterFactories();
  ::rocksdb::ConfigOptions config;
  std::shared_ptr<::rocksdb::FileSystem> fs;
  ::rocksdb::Status s = ::rocksdb::FileSystem::CreateFromString(config, "sluice://malloc:16M", &fs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_NE(fs, nullptr);
  write(*fs, "/via-registry", "x");
  EXPECT_TRUE(fs->FileExists("/via-registry", {}, nullptr).ok());

  ::rocksdb::Env* env = nullptr;
  std::shared_ptr<::rocksdb::Env> guard;
  s = ::rocksdb::Env::CreateFromString(config, "sluice://malloc:16M", &env, &guard);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(env->FileExists("/via-registry").ok());  // the same mount

  // A failing factory reports why (the stock tools print it) instead of yielding null.
  std::shared_ptr<::rocksdb::FileSystem> bad;
  s = ::rocksdb::FileSystem::CreateFromString(config, "sluice://uring:/nonexistent/image", &bad);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.ToString().find("cannot open device"), std::string::npos) << s.ToString();
  // Every "sluice:" URI is claimed, so even one without a device gets its message (a URI no
  // factory claims ends the stock tools with SIGSEGV).
  for (const std::string uri : {"sluice://", "sluice:", "sluice:/tmp/image"}) {
    bad.reset();
    s = ::rocksdb::FileSystem::CreateFromString(config, uri, &bad);
    EXPECT_FALSE(s.ok()) << uri;
    EXPECT_NE(s.ToString().find("bad SluiceFS URI"), std::string::npos) << uri << ": " << s.ToString();
  }
}

TEST(PluginMount, OneMountPerDeviceSharedByEveryFileSystem) {
  std::shared_ptr<::rocksdb::FileSystem> a, b;
  ASSERT_TRUE(NewFileSystem("sluice://malloc:16M", &a).ok());
  ASSERT_TRUE(NewFileSystem("sluice://malloc:16M?cache=1M", &b).ok());
  write(*a, "/shared", "written through a");
  uint64_t size = 0;
  ASSERT_TRUE(b->GetFileSize("/shared", {}, &size, nullptr).ok());
  EXPECT_EQ(size, 17u);
  a.reset();
  EXPECT_TRUE(b->FileExists("/shared", {}, nullptr).ok());  // still mounted for b
  b.reset();
  // The last user unmounted it: a malloc device starts empty again.
  std::shared_ptr<::rocksdb::FileSystem> c;
  ASSERT_TRUE(NewFileSystem("sluice://malloc:16M", &c).ok());
  EXPECT_TRUE(c->FileExists("/shared", {}, nullptr).IsNotFound());
}

TEST(PluginRoutes, PathsOutsideRootGoToPosix) {
  TempDir tmp;
  std::shared_ptr<::rocksdb::FileSystem> rooted, whole;
  ASSERT_TRUE(NewFileSystem("sluice://malloc:16M?root=/sluice", &rooted).ok());
  ASSERT_TRUE(NewFileSystem("sluice://malloc:16M", &whole).ok());
  ASSERT_TRUE(rooted->CreateDirIfMissing("/sluice/db", {}, nullptr).ok());
  write(*rooted, "/sluice/db/f", "on sluicefs");
  EXPECT_TRUE(whole->FileExists("/db/f", {}, nullptr).ok());  // root is SluiceFS's "/"
  EXPECT_FALSE(std::filesystem::exists("/sluice/db/f"));
  write(*rooted, tmp.path() + "/g", "on posix");
  EXPECT_TRUE(std::filesystem::exists(tmp.path() + "/g"));
  EXPECT_TRUE(whole->FileExists(tmp.path() + "/g", {}, nullptr).IsNotFound());
  std::string abs;
  ASSERT_TRUE(rooted->GetAbsolutePath("db", {}, &abs, nullptr).ok());
  EXPECT_EQ(abs, "/sluice/db");
}

// RocksDB's pool threads outlive this DB and keep their SluiceFS channels after the unmount;
// later mounts must not mind (src/fs/channels.cc keeps an unmounted store for them, and the
// suite passes in any order: --gtest_shuffle).
TEST(PluginRoutes, WalDirKeepsWalFilesOnPosix) {
  TempDir tmp;
  std::shared_ptr<::rocksdb::FileSystem> fs;
  ASSERT_TRUE(NewFileSystem("sluice://malloc:32M?wal_dir=" + tmp.path(), &fs).ok());
  auto env = ::rocksdb::NewCompositeEnv(fs);
  ::rocksdb::Options o;
  o.env = env.get();
  o.create_if_missing = true;
  o.avoid_flush_during_shutdown = true;  // the data stays in the WAL only
  {
    ::rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(::rocksdb::DB::Open(o, "/db", &raw).ok());
    std::unique_ptr<::rocksdb::DB> db(raw);
    ::rocksdb::WriteOptions wo;
    wo.sync = true;
    ASSERT_TRUE(db->Put(wo, "k", "in the wal").ok());
    ASSERT_TRUE(db->Close().ok());
  }
  bool found_wal = false;
  for (auto& e : std::filesystem::directory_iterator(tmp.path() + "/db"))
    found_wal |= e.path().extension() == ".log" && std::filesystem::file_size(e.path()) > 0;
  EXPECT_TRUE(found_wal) << "no WAL under " << tmp.path() << "/db";
  std::vector<std::string> children;
  ASSERT_TRUE(fs->GetChildren("/db", {}, &children, nullptr).ok());
  EXPECT_TRUE(std::any_of(children.begin(), children.end(), [](auto& n) { return n.ends_with(".log"); }));
  EXPECT_TRUE(std::any_of(children.begin(), children.end(), [](auto& n) { return n == "CURRENT"; }));
  ::rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(::rocksdb::DB::Open(o, "/db", &raw).ok());
  std::unique_ptr<::rocksdb::DB> db(raw);
  std::string v;
  ASSERT_TRUE(db->Get({}, "k", &v).ok());
  EXPECT_EQ(v, "in the wal");
}

}  // namespace
}  // namespace sluice::rocksdb_plugin
