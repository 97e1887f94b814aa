// SluiceFS namespace operations: directories, names, rename-replace, unlink while open,
// locks, statfs, check, and persistence across remounts.
#include <algorithm>

#include "aligned_buffer.h"
#include "blob/probe.h"
#include "fs_test_support.h"

namespace sluice::fs::testing {
namespace {

using Strings = std::vector<std::string>;

TEST_P(FsTest, EmptyAfterFormat) {
  auto l = fs_->list("/");
  ASSERT_TRUE(l.ok()) << l.status().to_string();
  EXPECT_TRUE(l->empty());
  FsStat s = fs_->statfs();
  EXPECT_GT(s.total_bytes, 0u);
  EXPECT_GT(s.free_bytes, 0u);
  EXPECT_EQ(s.files, 0u);
  EXPECT_EQ(s.directories, 1u);  // the root
  EXPECT_EQ(s.cluster_size, cluster_);
  EXPECT_GT(s.block_size, 0u);
  auto c = fs_->check();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->ok()) << c->problems.front();
}

TEST_P(FsTest, DirectoriesAndListing) {
  ASSERT_TRUE(fs_->mkdir("/db1").ok());
  EXPECT_EQ(fs_->mkdir("/db1").code(), Errc::exists);
  ASSERT_TRUE(fs_->mkdirs("/db2/a/b").ok());
  ASSERT_TRUE(fs_->mkdirs("/db2/a/b/").ok());  // exists: fine for mkdirs
  EXPECT_EQ(fs_->mkdir("/nope/x").code(), Errc::not_found);
  write_file("/db1/CURRENT", "x");
  write_file("/db1/000001.log", "y");
  write_file("//db1//LOCK", "");  // doubled slashes are accepted
  EXPECT_EQ(*fs_->list("/db1"), (Strings{"000001.log", "CURRENT", "LOCK"}));
  EXPECT_EQ(*fs_->list("/"), (Strings{"db1", "db2"}));
  EXPECT_EQ(*fs_->list("/db2/a/"), (Strings{"b"}));
  EXPECT_EQ(fs_->list("/db1/CURRENT").status().code(), Errc::not_a_directory);
  EXPECT_EQ(fs_->list("/missing").status().code(), Errc::not_found);
  auto st = fs_->stat("/db2/a");
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->directory);
  EXPECT_EQ(fs_->rmdir("/db2/a").code(), Errc::not_empty);
  ASSERT_TRUE(fs_->rmdir("/db2/a/b").ok());
  ASSERT_TRUE(fs_->rmdir("/db2/a").ok());
  EXPECT_EQ(fs_->rmdir("/db1/CURRENT").code(), Errc::not_a_directory);
  EXPECT_EQ(fs_->unlink("/db2").code(), Errc::is_a_directory);
  EXPECT_EQ(fs_->open("/db2", {}).status().code(), Errc::is_a_directory);
  remount();
  EXPECT_EQ(*fs_->list("/db1"), (Strings{"000001.log", "CURRENT", "LOCK"}));
  EXPECT_EQ(*fs_->list("/db2"), Strings{});
  EXPECT_EQ(slurp("/db1/CURRENT"), "x");
  auto c = fs_->check();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->ok());
  EXPECT_EQ(c->files, 3u);
  EXPECT_EQ(c->directories, 3u);
}

TEST_P(FsTest, BadNamesAndPaths) {
  std::string long_name(256, 'n');
  for (std::string p : {std::string("relative"), std::string(""), std::string("/a/../b"), std::string("/./x"),
                        std::string("/a\0b", 4)}) {
    auto f = fs_->open(p, {.write = true, .create = true});
    EXPECT_EQ(f.status().code(), Errc::invalid_argument) << p;
    EXPECT_FALSE(f.status().message().empty());
  }
  EXPECT_EQ(fs_->open("/" + long_name, {.write = true, .create = true}).status().code(), Errc::name_too_long);
  EXPECT_EQ(fs_->mkdir("/d/" + long_name).code(), Errc::name_too_long);
  EXPECT_TRUE(fs_->open("/" + std::string(255, 'n'), {.write = true, .create = true}).ok());
  auto missing = fs_->open("/missing", {});
  EXPECT_EQ(missing.status().code(), Errc::not_found);
  EXPECT_NE(missing.status().message().find("/missing"), std::string::npos);
  write_file("/file", "x");
  EXPECT_EQ(fs_->open("/file/child", {.write = true, .create = true}).status().code(), Errc::not_a_directory);
  EXPECT_EQ(fs_->open("/file", {.write = true, .create = true, .exclusive = true}).status().code(), Errc::exists);
  EXPECT_EQ(fs_->open("/x", {.create = true}).status().code(), Errc::invalid_argument);  // create needs write
}

TEST_P(FsTest, RenameReplacesAtomically) {
  ASSERT_TRUE(fs_->mkdir("/db").ok());
  write_file("/db/CURRENT", "MANIFEST-1");
  write_file("/db/CURRENT.tmp", "MANIFEST-2");
  const uint64_t free_before = fs_->statfs().free_bytes;
  ASSERT_TRUE(fs_->rename("/db/CURRENT.tmp", "/db/CURRENT").ok());
  EXPECT_EQ(slurp("/db/CURRENT"), "MANIFEST-2");
  EXPECT_EQ(*fs_->list("/db"), Strings{"CURRENT"});
  ASSERT_TRUE(fs_->sync_dir("/db").ok());
  EXPECT_GE(fs_->statfs().free_bytes, free_before);  // the replaced file's space came back
  // Across directories, and a directory with its contents.
  ASSERT_TRUE(fs_->mkdirs("/a/b").ok());
  write_file("/a/b/f", "deep");
  ASSERT_TRUE(fs_->rename("/a", "/db/a").ok());
  EXPECT_EQ(slurp("/db/a/b/f"), "deep");
  EXPECT_EQ(fs_->rename("/db", "/db/a/b/db").code(), Errc::invalid_argument);  // into itself
  EXPECT_EQ(fs_->rename("/missing", "/x").code(), Errc::not_found);
  EXPECT_EQ(fs_->rename("/db/CURRENT", "/db/a").code(), Errc::is_a_directory);
  remount();
  EXPECT_EQ(slurp("/db/CURRENT"), "MANIFEST-2");
  EXPECT_EQ(slurp("/db/a/b/f"), "deep");
  EXPECT_EQ(*fs_->list("/"), Strings{"db"});
  auto c = fs_->check();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->ok());
}

TEST_P(FsTest, RenameOverAnOpenFileKeepsItReadable) {
  write_file("/target", pattern(1, 5000));
  write_file("/source", "new");
  auto old = open_r("/target");
  ASSERT_TRUE(old);
  ASSERT_TRUE(fs_->rename("/source", "/target").ok());
  EXPECT_EQ(slurp("/target"), "new");
  EXPECT_EQ(read_all(*old), pattern(1, 5000));
  auto c = fs_->check();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->ok());
  EXPECT_EQ(c->orphans, 1u);
  ASSERT_TRUE(old->close().ok());
  c = fs_->check();
  EXPECT_EQ(c->orphans, 0u);
}

TEST_P(FsTest, UnlinkWhileOpen) {
  const std::string data = pattern(2, 200000);
  write_file("/victim", data);
  auto r = open_r("/victim");
  auto w = open_w("/victim");
  ASSERT_TRUE(r && w);
  const uint64_t free_open = fs_->statfs().free_bytes;
  ASSERT_TRUE(fs_->unlink("/victim").ok());
  EXPECT_EQ(fs_->open("/victim", {}).status().code(), Errc::not_found);
  EXPECT_EQ(fs_->unlink("/victim").code(), Errc::not_found);
  EXPECT_EQ(read_all(*r), data);
  ASSERT_TRUE(w->append("more", 4).ok());  // still writable through the handle
  ASSERT_TRUE(w->sync().ok());
  EXPECT_EQ(read_all(*r), data + "more");
  // A new file of the same name is independent.
  write_file("/victim", "fresh");
  EXPECT_EQ(slurp("/victim"), "fresh");
  ASSERT_TRUE(w->close().ok());
  ASSERT_TRUE(r->close().ok());
  ASSERT_TRUE(fs_->sync_dir("/").ok());
  EXPECT_GT(fs_->statfs().free_bytes, free_open);  // freed at the last close
  remount();
  EXPECT_EQ(slurp("/victim"), "fresh");
  EXPECT_EQ(fs_->check()->orphans, 0u);
}

TEST_P(FsTest, UnlinkedOpenFileIsCollectedAtMount) {
  write_file("/gone", pattern(3, 100000));
  auto r = open_r("/gone");
  ASSERT_TRUE(fs_->unlink("/gone").ok());
  ASSERT_TRUE(fs_->sync_dir("/").ok());
  const uint64_t free_orphaned = fs_->statfs().free_bytes;
  // The process dies with the file open: the next mount collects it.
  ASSERT_TRUE(r->close().ok());  // (closing the handle frees it too; make an orphan by hand below)
  auto again = open_w("/orphan");
  ASSERT_TRUE(again->append(pattern(4, 100000).data(), 100000).ok());
  ASSERT_TRUE(again->sync().ok());
  ASSERT_TRUE(fs_->unlink("/orphan").ok());
  ASSERT_TRUE(fs_->sync_dir("/").ok());
  again.reset();  // destructor closes
  fs_->abandon();
  fs_.reset();
  remount();
  auto c = fs_->check();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->ok());
  EXPECT_EQ(c->orphans, 0u);
  EXPECT_EQ(c->files, 0u);
  EXPECT_GE(fs_->statfs().free_bytes, free_orphaned);
}

TEST_P(FsTest, Locks) {
  ASSERT_TRUE(fs_->mkdir("/db").ok());
  auto l1 = fs_->lock("/db/LOCK");
  ASSERT_TRUE(l1.ok()) << l1.status().to_string();
  EXPECT_EQ(fs_->lock("/db/LOCK").status().code(), Errc::busy);
  EXPECT_EQ(fs_->lock("//db//LOCK").status().code(), Errc::busy);  // same path, normalized
  EXPECT_TRUE(fs_->stat("/db/LOCK").ok());                         // the lock file exists
  auto other = fs_->lock("/db2-LOCK");
  EXPECT_TRUE(other.ok());
  l1->reset();
  auto l2 = fs_->lock("/db/LOCK");
  EXPECT_TRUE(l2.ok());
}

TEST_P(FsTest, StatfsCountsAndSpace) {
  ASSERT_TRUE(fs_->mkdirs("/a/b").ok());
  write_file("/a/f1", "1");
  write_file("/a/b/f2", "2");
  FsStat s = fs_->statfs();
  EXPECT_EQ(s.files, 2u);
  EXPECT_EQ(s.directories, 3u);
  auto f = open_w("/big");
  const uint64_t before = fs_->statfs().free_bytes;
  ASSERT_TRUE(f->preallocate(1u << 20).ok());
  auto st = fs_->stat("/big");
  EXPECT_GE(st->allocated, 1u << 20);
  EXPECT_EQ(st->size, 0u);
  EXPECT_LE(fs_->statfs().free_bytes + (1u << 20), before);
  ASSERT_TRUE(f->close().ok());
}

TEST_P(FsTest, ForeignAndNewerImagesAreRefused) {
  fs_->unmount().ok();
  fs_.reset();
  // A plain blobstore (not SluiceFS).
  {
    auto bs = blob::Blobstore::init(dev_, {.force = true});
    ASSERT_TRUE(bs.ok());
    ASSERT_TRUE((*bs)->unload().ok());
  }
  auto m = FileSystem::mount(dev_);
  EXPECT_EQ(m.status().code(), Errc::wrong_format);
  EXPECT_NE(m.status().message().find("not a SluiceFS image"), std::string::npos) << m.status().message();
  // Zeroes: not even a blobstore.
  {
    auto desc = bdev::open(dev_);
    ASSERT_TRUE(desc.ok());
    auto ch = (*desc)->get_channel();
    sluice::testing::AlignedBuffer zero(64 * 1024);
    bdev::SyncIo io{**desc, *ch};
    const uint32_t bs = (*desc)->geometry().block_size;
    ASSERT_TRUE(io.write(zero.data(), 0, 64 * 1024 / bs).ok());
    ASSERT_TRUE((*desc)->put_channel(*ch).ok());
  }
  m = FileSystem::mount(dev_);
  EXPECT_EQ(m.status().code(), Errc::wrong_format);
  EXPECT_NE(m.status().message().find("not a SluiceFS image"), std::string::npos) << m.status().message();
  // A SluiceFS root from a newer version.
  ASSERT_TRUE(FileSystem::format(dev_, {.force = true}).ok());
  {
    auto bs = blob::Blobstore::load(dev_);
    ASSERT_TRUE(bs.ok());
    auto root = (*bs)->super_blob();
    ASSERT_TRUE(root.ok());
    std::string ident = *(*bs)->get_xattr(*root, "sfs.fs", true);
    ident[8] = 99;
    ASSERT_TRUE((*bs)->set_xattr(*root, "sfs.fs", ident, true).ok());
    ASSERT_TRUE((*bs)->unload().ok());
  }
  m = FileSystem::mount(dev_);
  EXPECT_EQ(m.status().code(), Errc::not_supported);
  EXPECT_NE(m.status().message().find("newer"), std::string::npos) << m.status().message();
  // Missing device.
  m = FileSystem::mount("uring:/nonexistent/dir/img");
  EXPECT_FALSE(m.ok());
  ASSERT_TRUE(FileSystem::format(dev_, {.force = true}).ok());
  remount();
}

// Formatting destroys what a device holds, so it takes a blank device unless forced.
TEST_P(FsTest, FormatRefusesAnythingButABlankDevice) {
  write_file("/keep", "x");
  ASSERT_TRUE(fs_->unmount().ok());
  fs_.reset();
  Status st = FileSystem::format(dev_);
  EXPECT_EQ(st.code(), Errc::exists) << st.to_string();
  EXPECT_NE(st.message().find("already holds a SluiceFS image (2 files and directories) in blobstore"),
            std::string::npos)
      << st.message();
  remount();
  EXPECT_EQ(slurp("/keep"), "x");
  ASSERT_TRUE(fs_->unmount().ok());
  fs_.reset();
  ASSERT_TRUE(FileSystem::format(dev_, {.force = true}).ok());
  remount();
  EXPECT_EQ(*fs_->list("/"), Strings{});
}

TEST_P(FsTest, CorruptImageIsRefused) {
  fs_->unmount().ok();
  fs_.reset();
  // Damage both super block copies: the blobstore reports a corrupt image.
  {
    auto desc = bdev::open(dev_);
    ASSERT_TRUE(desc.ok());
    auto ch = (*desc)->get_channel();
    sluice::testing::AlignedBuffer page(8192);
    bdev::SyncIo io{**desc, *ch};
    const uint32_t bs = (*desc)->geometry().block_size;
    ASSERT_TRUE(io.read(page.data(), 0, 8192 / bs).ok());
    page.data()[200] ^= 0x55;
    page.data()[4096 + 200] ^= 0x55;
    ASSERT_TRUE(io.write(page.data(), 0, 8192 / bs).ok());
    ASSERT_TRUE((*desc)->put_channel(*ch).ok());
  }
  auto m = FileSystem::mount(dev_);
  EXPECT_EQ(m.status().code(), Errc::corrupt) << m.status().to_string();
  ASSERT_TRUE(FileSystem::format(dev_, {.force = true}).ok());
  remount();
}

TEST_P(FsTest, DamagedNamespaceIsRefusedWithAReason) {
  write_file("/a", "x");
  write_file("/b", "y");
  const uint64_t b_id = fs_->stat("/b")->id;
  ASSERT_TRUE(fs_->unmount().ok());
  fs_.reset();
  {
    // Give /b the same name as /a: two entries named 'a' in the root.
    auto bs = blob::Blobstore::load(dev_);
    ASSERT_TRUE(bs.ok());
    auto root = (*bs)->super_blob();
    std::string entry(1, '\1');
    for (int i = 0; i < 8; ++i) entry += static_cast<char>((*root >> (8 * i)) & 0xff);
    entry += "a";
    ASSERT_TRUE((*bs)->set_xattr(b_id, "sfs.n", entry, true).ok());
    ASSERT_TRUE((*bs)->unload().ok());
  }
  auto m = FileSystem::mount(dev_);
  EXPECT_EQ(m.status().code(), Errc::corrupt);
  EXPECT_NE(m.status().message().find("two entries named 'a'"), std::string::npos) << m.status().message();
  ASSERT_TRUE(FileSystem::format(dev_, {.force = true}).ok());
  remount();
}

TEST_P(FsTest, ReadOnlyMount) {
  write_file("/f", "data");
  remount({.read_only = true});
  EXPECT_EQ(slurp("/f"), "data");
  EXPECT_EQ(fs_->open("/f", {.write = true}).status().code(), Errc::permission);
  EXPECT_EQ(fs_->mkdir("/d").code(), Errc::permission);
  remount();
}

TEST_P(FsTest, ManyInstancesInTheirDirectories) {
  for (int db = 0; db < 6; ++db) {
    ASSERT_TRUE(fs_->mkdirs(fmt::format("/db{}", db)).ok());
    for (int i = 0; i < 8; ++i) {
      auto f = open_w(fmt::format("/db{}/{:06}.sst", db, i));
      std::string data = pattern(db * 100 + i, 100 + i);
      ASSERT_TRUE(f->append(data.data(), data.size()).ok());
      ASSERT_TRUE(f->close().ok());
    }
  }
  ASSERT_TRUE(fs_->sync_dir("/").ok());
  remount();
  for (int db = 0; db < 6; ++db) {
    EXPECT_EQ(fs_->list(fmt::format("/db{}", db))->size(), 8u);
    EXPECT_EQ(slurp(fmt::format("/db{}/{:06}.sst", db, 7)), pattern(db * 100 + 7, 107));
  }
}

TEST_P(FsTest, UnmountWithOpenHandlesIsRefused) {
  auto f = open_w("/open");
  EXPECT_EQ(fs_->unmount().code(), Errc::busy);
  ASSERT_TRUE(f->close().ok());
  EXPECT_EQ(f->close().code(), Errc::invalid_argument);  // closed once
  auto g = open_r("/open");
  EXPECT_EQ(fs_->unmount().code(), Errc::busy);
  g.reset();  // the destructor closes
  ASSERT_TRUE(fs_->unmount().ok());
  fs_.reset();
  remount();
}

INSTANTIATE_TEST_SUITE_P(Backends, FsTest, ::testing::ValuesIn(backends()), backend_name);

// A blob removed under SluiceFS (`sluice blob rm --force`) leaves no trace in the namespace,
// since directories do not list their children; the note that command leaves on the root
// makes check() report it.
TEST_P(FsTest, CheckReportsABlobRemovedUnderIt) {
  write_file("/gone", "x");
  write_file("/kept", "y");
  auto st = fs_->stat("/gone");
  ASSERT_TRUE(st.ok());
  const uint64_t id = st->id;
  ASSERT_TRUE(fs_->unmount().ok());
  fs_.reset();
  {
    auto bs = blob::Blobstore::load(dev_);
    ASSERT_TRUE(bs.ok()) << bs.status().to_string();
    auto root = (*bs)->super_blob();
    ASSERT_TRUE(root.ok());
    ASSERT_TRUE((*bs)->remove(id).ok());
    ASSERT_TRUE((*bs)->set_xattr(*root, blob::kXattrForcedRemovals, std::to_string(id), true).ok());
    ASSERT_TRUE((*bs)->unload().ok());
  }
  remount();
  auto c = fs_->check();
  ASSERT_TRUE(c.ok());
  ASSERT_FALSE(c->ok());
  EXPECT_NE(c->problems.front().find(std::to_string(id)), std::string::npos) << c->problems.front();
  EXPECT_EQ(slurp("/kept"), "y");
  EXPECT_EQ(fs_->stat("/gone").status().code(), Errc::not_found);
}

}  // namespace
}  // namespace sluice::fs::testing
