// Device probes (blob/probe.h) and the guard in Blobstore::init: every kind of content is
// told apart and named, and a refused init leaves every byte of the device as it was.
#include "blob/probe.h"

#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "blob/blob.h"

#include "temp_file.h"

namespace sluice::blob {
namespace {

using sluice::testing::patch_image;
using sluice::testing::read_image;
using sluice::testing::TempFile;

constexpr uint64_t kSize = 32u << 20;

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// An image file and a uring bdev on it, made fresh for each step that needs one.
class ProbeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(file_.path().empty()); }
  void TearDown() override { close(); }

  const std::string& open() {
    if (dev_.empty()) {
      auto n = bdev::create("uring:" + file_.path(), "");
      EXPECT_TRUE(n.ok()) << n.status().to_string();
      if (n.ok()) dev_ = *n;
    }
    return dev_;
  }
  void close() {
    if (!dev_.empty()) (void)bdev::unregister(dev_);
    dev_.clear();
  }
  Probe probe() {
    auto p = probe_device(open());
    EXPECT_TRUE(p.ok()) << p.status().to_string();
    return p.ok() ? *p : Probe{};
  }
  InitOptions small() {
    InitOptions o;
    o.cluster_size = 64 * 1024;
    return o;
  }
  void make_store(const std::map<std::string, std::string>& super_xattrs) {
    auto bs = Blobstore::init(open(), small());
    ASSERT_TRUE(bs.ok()) << bs.status().to_string();
    if (!super_xattrs.empty()) {
      auto id = (*bs)->create({});
      ASSERT_TRUE(id.ok());
      for (auto& [k, v] : super_xattrs) ASSERT_TRUE((*bs)->set_xattr(*id, k, v, true).ok());
      ASSERT_TRUE((*bs)->set_super_blob(*id).ok());
    }
    ASSERT_TRUE((*bs)->unload().ok());
  }
  // An init without force is refused with Errc::exists, names `what`, and writes nothing.
  void expect_init_refused(const std::string& what) {
    close();
    const std::string before = read_image(file_.path());
    auto bs = Blobstore::init(open(), small());
    ASSERT_FALSE(bs.ok());
    EXPECT_EQ(bs.status().code(), Errc::exists);
    EXPECT_NE(bs.status().message().find(what), std::string::npos) << bs.status().message();
    EXPECT_NE(bs.status().message().find(dev_), std::string::npos) << bs.status().message();
    close();
    EXPECT_TRUE(read_image(file_.path()) == before) << "a refused init changed the device";
  }

  TempFile file_{kSize};
  std::string dev_;
};

TEST_F(ProbeTest, AFreshDeviceIsBlank) {
  Probe p = probe();
  EXPECT_EQ(p.content, Content::blank);
  EXPECT_TRUE(p.signatures.empty());
  EXPECT_TRUE(check_blank(open()).ok());
  auto m = bdev::create("malloc:8M", "");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(check_blank(*m).ok());
  (void)bdev::unregister(*m);
}

TEST_F(ProbeTest, BytesUnderNoLabelAreData) {
  patch_image(file_.path(), 5000, random_bytes(100, 1));
  Probe p = probe();
  EXPECT_EQ(p.content, Content::data);
  EXPECT_NE(p.description.find("offset 5000"), std::string::npos) << p.description;
  expect_init_refused("data of an unknown kind");
}

TEST_F(ProbeTest, TheLastMegabyteIsLookedAtToo) {
  patch_image(file_.path(), kSize - 10, "x");
  EXPECT_EQ(probe().content, Content::data);
}

TEST_F(ProbeTest, RandomBytesAreData) {
  patch_image(file_.path(), 0, random_bytes(1u << 20, 2));
  EXPECT_EQ(probe().content, Content::data);
  expect_init_refused("data of an unknown kind");
}

TEST_F(ProbeTest, AStoreWithoutASuperBlob) {
  make_store({});
  Probe p = probe();
  EXPECT_EQ(p.content, Content::blobstore);
  EXPECT_EQ(p.owner, "");
  EXPECT_NE(p.description.find("no super blob"), std::string::npos) << p.description;
  expect_init_refused("no super blob");
}

TEST_F(ProbeTest, AStoreOfAnUnknownUser) {
  make_store({{"acme.db", "1"}});
  Probe p = probe();
  EXPECT_EQ(p.content, Content::blobstore);
  EXPECT_EQ(p.owner, "");
  EXPECT_NE(p.description.find("acme.db"), std::string::npos) << p.description;
  expect_init_refused("belongs to no user this program knows");
}

TEST_F(ProbeTest, ARegisteredOwnerNamesItsStore) {
  register_owner("acme", [](Blobstore& bs, BlobId super) -> std::optional<std::string> {
    auto v = bs.get_xattr(super, "acme.db", true);
    if (!v.ok()) return std::nullopt;
    return "an acme database, version " + *v;
  });
  make_store({{"acme.db", "7"}});
  Probe p = probe();
  EXPECT_EQ(p.content, Content::blobstore);
  EXPECT_EQ(p.owner, "acme");
  EXPECT_NE(p.description.find("an acme database, version 7 in blobstore"), std::string::npos) << p.description;
  expect_init_refused("an acme database, version 7");
  // Other stores are not its.
  close();
  InitOptions o = small();
  o.force = true;
  auto bs = Blobstore::init(open(), o);
  ASSERT_TRUE(bs.ok());
  ASSERT_TRUE((*bs)->unload().ok());
  EXPECT_EQ(probe().owner, "");
}

TEST_F(ProbeTest, DamagedSuperBlocksAreDamaged) {
  make_store({});
  close();
  patch_image(file_.path(), 100, "garbage");         // copy A: magic kept, checksum broken
  patch_image(file_.path(), 4096 + 100, "garbage");  // copy B
  Probe p = probe();
  EXPECT_EQ(p.content, Content::damaged);
  EXPECT_NE(p.description.find("does not load"), std::string::npos) << p.description;
  expect_init_refused("does not load");
}

TEST_F(ProbeTest, ZeroedSuperBlocksLeaveTheCheckpoint) {
  make_store({});
  close();
  patch_image(file_.path(), 0, std::string(8192, '\0'));
  Probe p = probe();
  EXPECT_EQ(p.content, Content::damaged);
  // The load names what survives and the repair that rebuilds the super block from it.
  EXPECT_NE(p.description.find("a checkpoint survives"), std::string::npos) << p.description;
  expect_init_refused("a checkpoint survives");
}

TEST_F(ProbeTest, AnotherFilesystemIsForeign) {
  const std::string cmd = "mkfs.ext4 -q -F -L probed " + file_.path() + " >/dev/null 2>&1";
  if (std::system(("PATH=$PATH:/sbin:/usr/sbin " + cmd).c_str()) != 0) GTEST_SKIP() << "mkfs.ext4 is not available";
  Probe p = probe();
  EXPECT_EQ(p.content, Content::foreign);
  ASSERT_FALSE(p.signatures.empty());
  EXPECT_NE(p.signatures[0].find("an ext4 filesystem (label 'probed'"), std::string::npos) << p.signatures[0];
  expect_init_refused("an ext4 filesystem");
}

TEST_F(ProbeTest, ForceFormatsAnyway) {
  patch_image(file_.path(), 0, random_bytes(4096, 3));
  InitOptions o = small();
  o.force = true;
  auto bs = Blobstore::init(open(), o);
  ASSERT_TRUE(bs.ok()) << bs.status().to_string();
  ASSERT_TRUE((*bs)->unload().ok());
  EXPECT_EQ(probe().content, Content::blobstore);
}

TEST_F(ProbeTest, AClaimedDeviceIsAnErrorNotAVerdict) {
  make_store({});
  auto bs = Blobstore::load(open());
  ASSERT_TRUE(bs.ok());
  auto p = probe_device(dev_);
  EXPECT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Errc::busy) << p.status().to_string();
  EXPECT_FALSE(check_blank(dev_).ok());
}

}  // namespace
}  // namespace sluice::blob
