// Tests specific to the kernel-I/O backends (uring, aio): what they accept as a target, the
// geometry they derive from it, and that their data really lands in the file or device.
// The behaviour every backend shares is in conformance_test.cc.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev/file_target.h"
#include "env/env.h"

#include "aligned_buffer.h"
#include "bdev_handle.h"
#include "temp_file.h"

namespace sluice::bdev {
namespace {
using sluice::testing::AlignedBuffer;
using sluice::testing::TempFile;

// A created and opened device with this thread's channel; torn down in reverse.
struct Device {
  std::string name;
  std::unique_ptr<BdevDesc> desc;
  BdevChannel* ch = nullptr;

  ~Device() {
    if (ch != nullptr) {
      EXPECT_TRUE(desc->put_channel(ch).ok());
    }
    desc.reset();
    if (!name.empty()) {
      EXPECT_TRUE(unregister(name).ok());
    }
  }
  const Geometry& geo() const { return desc->geometry(); }
  SyncIo sync() { return SyncIo{*desc, ch}; }
};

std::unique_ptr<Device> make_device(const std::string& spec) {
  auto dev = std::make_unique<Device>();
  auto name = create(spec);
  EXPECT_TRUE(name.ok()) << spec << ": " << name.status().to_string();
  if (!name.ok()) return nullptr;
  dev->name = *name;
  auto desc = open(dev->name);
  EXPECT_TRUE(desc.ok()) << desc.status().to_string();
  if (!desc.ok()) return nullptr;
  dev->desc = std::move(desc.value());
  auto ch = dev->desc->get_channel();
  EXPECT_TRUE(ch.ok()) << ch.status().to_string();
  if (!ch.ok()) return nullptr;
  dev->ch = *ch;
  return dev;
}

// Reads a file through the page cache, as any other program would.
std::vector<char> pread_file(const std::string& path, uint64_t offset, size_t len) {
  std::vector<char> out(len);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  if (fd < 0) return {};
  EXPECT_EQ(pread(fd, out.data(), len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
  close(fd);
  return out;
}

void pwrite_file(const std::string& path, uint64_t offset, const void* data, size_t len) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(pwrite(fd, data, len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
}

// The direct-I/O offset alignment the file system reports for `path` (0: not reported).
uint32_t dio_offset_align(const std::string& path) {
  struct statx sx = {};
  if (statx(AT_FDCWD, path.c_str(), 0, STATX_DIOALIGN, &sx) != 0 || !(sx.stx_mask & STATX_DIOALIGN)) return 0;
  return sx.stx_dio_offset_align;
}

// Buffers io_uring has registered on any ring of this process, as [begin, end) ranges,
// from /proc/self/fdinfo; nullopt when the kernel does not list them.
std::optional<std::vector<std::pair<uintptr_t, uintptr_t>>> registered_buffers() {
  std::optional<std::vector<std::pair<uintptr_t, uintptr_t>>> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (ec || target.string().find("io_uring") == std::string::npos) continue;
    std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
    std::string line;
    bool in_bufs = false;
    while (std::getline(info, line)) {
      if (line.rfind("UserBufs:", 0) == 0) {
        in_bufs = true;
        if (!out) out.emplace();
        continue;
      }
      if (!in_bufs) continue;
      unsigned long long addr = 0, len = 0;
      unsigned idx = 0;
      if (std::sscanf(line.c_str(), " %u: 0x%llx/%llu", &idx, &addr, &len) == 3) {
        out->push_back({addr, addr + len});
      } else if (line.find("<none>") == std::string::npos) {
        in_bufs = false;
      }
    }
  }
  return out;
}

bool is_registered(const void* p, size_t len) {
  auto bufs = registered_buffers();
  if (!bufs) return false;
  auto begin = reinterpret_cast<uintptr_t>(p);
  for (auto [b, e] : *bufs)
    if (begin >= b && begin + len <= e) return true;
  return false;
}

class FileBackend : public ::testing::TestWithParam<std::string> {
 protected:
  std::string spec(const std::string& path, const std::string& options = "") const {
    return GetParam() + ":" + path + (options.empty() ? "" : "?" + options);
  }
  // Creating must fail with `code` and a message naming the scheme.
  void expect_refused(const std::string& s, Errc code, const std::string& fragment) {
    auto r = create(s);
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_EQ(r.status().code(), code) << r.status().to_string();
    EXPECT_NE(r.status().message().find(GetParam() + ":"), std::string::npos) << r.status().to_string();
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().to_string();
  }
};

TEST_P(FileBackend, MissingFileIsAClearError) {
  expect_refused(spec("/nonexistent-dir/disk.img"), Errc::not_found,
                 GetParam() + ": cannot open /nonexistent-dir/disk.img: No such file or directory");
}

TEST_P(FileBackend, DirectoryIsRefused) {
  auto dir = std::filesystem::temp_directory_path();
  expect_refused(spec(dir.string()), Errc::invalid_argument, "is a directory");
}

TEST_P(FileBackend, CharacterDeviceIsRefused) {
  expect_refused(spec("/dev/null"), Errc::invalid_argument, "neither a regular file nor a block device");
}

TEST_P(FileBackend, EmptyOrTinyFileIsRefused) {
  TempFile empty(0);
  expect_refused(spec(empty.path()), Errc::invalid_argument, "smaller than one block");
  TempFile tiny(100);
  expect_refused(spec(tiny.path()), Errc::invalid_argument, "smaller than one block");
  TempFile small(3000);
  expect_refused(spec(small.path(), "bs=4096"), Errc::invalid_argument, "smaller than one block");
}

TEST_P(FileBackend, BadOptionsAreRefused) {
  TempFile f(1 << 20);
  expect_refused(spec(f.path(), "colour=blue"), Errc::invalid_argument, "unknown option 'colour'");
  expect_refused(spec(f.path(), "bs=1000"), Errc::invalid_argument, "block size");
  expect_refused(spec(f.path(), "qd=0"), Errc::invalid_argument, "qd");
  // The ring (or AIO context) must hold the channel's requests and its split children.
  expect_refused(spec(f.path(), "qd=65536"), Errc::invalid_argument, "qd 65536 exceeds");
  expect_refused(spec(f.path(), "bs=4096&bs=512"), Errc::invalid_argument, "option 'bs' is given twice");
  expect_refused(spec(f.path(), "bs"), Errc::invalid_argument, "option 'bs' is not key=value");
  expect_refused(spec(f.path(), "=4096"), Errc::invalid_argument, "option '=4096' is not key=value");
}

TEST_P(FileBackend, GeometryOfARegularFile) {
  TempFile f((1 << 20) + 100);  // not a whole number of blocks
  auto dev = make_device(spec(f.path()));
  ASSERT_TRUE(dev);
  const Geometry& g = dev->geo();
  const uint32_t want_bs = std::max<uint32_t>(512, dio_offset_align(f.path()));
  EXPECT_EQ(g.block_size, want_bs);
  EXPECT_EQ(g.num_blocks, ((1u << 20) + 100) / want_bs);  // the partial tail is not a block
  EXPECT_EQ(g.max_transfer_blocks, (1u << 20) / want_bs);
  EXPECT_GE(g.buf_align, 512u);
  EXPECT_EQ(g.buf_align & (g.buf_align - 1), 0u);
  EXPECT_EQ(g.queue_depth, 256u);
  for (IoType t : {IoType::read, IoType::write, IoType::flush, IoType::unmap, IoType::write_zeroes, IoType::reset})
    EXPECT_TRUE(g.supports(t)) << io_type_name(t);
  EXPECT_TRUE(g.unmap_zeroes);
}

TEST_P(FileBackend, OptionsShapeTheGeometryAndStayInTheSpec) {
  TempFile f(1 << 20);
  auto dev = make_device(spec(f.path(), "bs=4096&qd=8&mt=64K"));
  ASSERT_TRUE(dev);
  EXPECT_EQ(dev->geo().block_size, 4096u);
  EXPECT_EQ(dev->geo().num_blocks, 256u);
  EXPECT_EQ(dev->geo().queue_depth, 8u);
  EXPECT_EQ(dev->geo().max_transfer_blocks, 16u);
  EXPECT_EQ(find(dev->name)->spec(), spec(f.path(), "bs=4096&mt=64K&qd=8"));
}

TEST_P(FileBackend, WritesReachTheFileAfterFlush) {
  TempFile f(4 << 20);
  auto dev = make_device(spec(f.path()));
  ASSERT_TRUE(dev);
  const uint32_t bs = dev->geo().block_size;
  const uint64_t last = dev->geo().num_blocks - 8;
  AlignedBuffer a(8 * bs), b(8 * bs);
  a.fill_pattern(1);
  b.fill_pattern(2);
  ASSERT_TRUE(dev->sync().write(a.data(), 0, 8).ok());
  iovec v[2] = {{b.data(), 3 * bs}, {b.data() + 3 * bs, 5 * bs}};
  ASSERT_TRUE(dev->sync().writev(v, 2, last, 8).ok());
  ASSERT_TRUE(dev->sync().flush().ok());
  auto head = pread_file(f.path(), 0, 8 * bs);
  auto tail = pread_file(f.path(), last * bs, 8 * bs);
  EXPECT_EQ(std::memcmp(head.data(), a.data(), 8 * bs), 0);
  EXPECT_EQ(std::memcmp(tail.data(), b.data(), 8 * bs), 0);
}

TEST_P(FileBackend, ExistingContentIsRead) {
  TempFile f(1 << 20);
  AlignedBuffer want(64 << 10), got(64 << 10);
  want.fill_pattern(3);
  pwrite_file(f.path(), 128 << 10, want.data(), want.size());
  auto dev = make_device(spec(f.path()));
  ASSERT_TRUE(dev);
  const uint32_t bs = dev->geo().block_size;
  ASSERT_TRUE(dev->sync().read(got.data(), (128 << 10) / bs, want.size() / bs).ok());
  EXPECT_EQ(got, want);
}

TEST_P(FileBackend, PartialTrailingBlockIsLeftAlone) {
  const uint64_t size = 8192 + 100;
  TempFile f(size);
  std::vector<char> fill(size, '\xab');
  pwrite_file(f.path(), 0, fill.data(), fill.size());
  auto dev = make_device(spec(f.path(), "bs=512"));
  ASSERT_TRUE(dev);
  ASSERT_EQ(dev->geo().num_blocks, 16u);
  AlignedBuffer out(512);
  out.fill_pattern(4);
  ASSERT_TRUE(dev->sync().write(out.data(), 15, 1).ok());
  ASSERT_TRUE(dev->sync().flush().ok());
  EXPECT_EQ(dev->desc->read(dev->ch, out.data(), 16, 1, nullptr, nullptr).code(), Errc::out_of_range);
  auto block = pread_file(f.path(), 15 * 512, 512);
  EXPECT_EQ(std::memcmp(block.data(), out.data(), 512), 0);
  auto tail = pread_file(f.path(), 8192, 100);
  EXPECT_EQ(tail, std::vector<char>(100, '\xab'));
  struct stat st = {};
  ASSERT_EQ(stat(f.path().c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), size);
}

TEST_P(FileBackend, UnmapPunchesAHoleInTheFile) {
  TempFile f(4 << 20);
  auto dev = make_device(spec(f.path(), "bs=4096"));
  ASSERT_TRUE(dev);
  AlignedBuffer out(1 << 20), in(1 << 20);
  out.fill_pattern(5);
  ASSERT_TRUE(dev->sync().write(out.data(), 0, 256).ok());
  ASSERT_TRUE(dev->sync().flush().ok());
  struct stat before = {}, after = {};
  ASSERT_EQ(stat(f.path().c_str(), &before), 0);
  ASSERT_TRUE(dev->sync().unmap(64, 128).ok());
  ASSERT_EQ(stat(f.path().c_str(), &after), 0);
  EXPECT_LT(after.st_blocks, before.st_blocks);
  EXPECT_EQ(after.st_size, before.st_size);
  ASSERT_TRUE(dev->sync().read(in.data(), 0, 256).ok());
  EXPECT_EQ(std::memcmp(in.data(), out.data(), 64 * 4096), 0);
  EXPECT_TRUE(in.is_zero(64 * 4096, 128 * 4096));
  EXPECT_EQ(std::memcmp(in.data() + 192 * 4096, out.data() + 192 * 4096, 64 * 4096), 0);
}

// DMA buffers go through the ring's registered (fixed) buffers, others through plain
// reads and writes: both must move the same bytes, in any combination.
TEST_P(FileBackend, DmaAndPlainBuffersMoveTheSameData) {
  TempFile f(8 << 20);
  auto dev = make_device(spec(f.path()));
  ASSERT_TRUE(dev);
  const uint32_t bs = dev->geo().block_size;
  const size_t len = 256 << 10;
  env::DmaBuffer dma_out(len), dma_in(len);
  ASSERT_TRUE(dma_out && dma_in);
  AlignedBuffer plain_out(len), plain_in(len);
  plain_out.fill_pattern(6);
  std::memcpy(dma_out.data(), plain_out.data(), len);
  std::memset(dma_in.data(), 0, len);

  ASSERT_TRUE(dev->sync().write(dma_out.data(), 0, len / bs).ok());          // fixed write
  ASSERT_TRUE(dev->sync().read(plain_in.data(), 0, len / bs).ok());          // plain read
  EXPECT_EQ(plain_in, plain_out);
  ASSERT_TRUE(dev->sync().write(plain_out.data(), 2048, len / bs).ok());     // plain write
  ASSERT_TRUE(dev->sync().read(dma_in.data(), 2048, len / bs).ok());        // fixed read
  EXPECT_EQ(std::memcmp(dma_in.data(), plain_out.data(), len), 0);
  // Two DMA segments: a vectored request, never fixed.
  iovec v[2] = {{dma_in.data(), len / 2}, {static_cast<char*>(dma_in.data()) + len / 2, len / 2}};
  std::memset(dma_in.data(), 0, len);
  ASSERT_TRUE(dev->sync().readv(v, 2, 0, len / bs).ok());
  EXPECT_EQ(std::memcmp(dma_in.data(), plain_out.data(), len), 0);

  if (GetParam() == "uring") {
    auto bufs = registered_buffers();
    if (!bufs) GTEST_SKIP() << "the kernel does not list registered buffers in fdinfo";
    EXPECT_TRUE(is_registered(dma_in.data(), len));
    EXPECT_FALSE(is_registered(plain_in.data(), len));
  }
}

// DMA memory the pool maps after the channel exists is registered as soon as it is used.
TEST_P(FileBackend, DmaMemoryMappedLaterIsUsedToo) {
  // A fresh pool of small chunks: the buffer below needs one mapped after the channel.
  env::dma_teardown();
  env::DmaOptions options;
  options.hugepages = env::HugepageMode::off;
  options.chunk_bytes = 2 << 20;
  ASSERT_TRUE(env::dma_init(options).ok());
  {
    TempFile f(8 << 20);
    auto dev = make_device(spec(f.path()));
    ASSERT_TRUE(dev);
    const uint32_t bs = dev->geo().block_size;
    ASSERT_TRUE(env::dma_regions().empty());
    env::DmaBuffer buf(1 << 20);
    ASSERT_TRUE(buf);
    ASSERT_FALSE(env::dma_regions().empty());
    AlignedBuffer want(1 << 20);
    want.fill_pattern(7);
    std::memcpy(buf.data(), want.data(), want.size());
    ASSERT_TRUE(dev->sync().write(buf.data(), 0, want.size() / bs).ok());
    std::memset(buf.data(), 0, want.size());
    ASSERT_TRUE(dev->sync().read(buf.data(), 0, want.size() / bs).ok());
    EXPECT_EQ(std::memcmp(buf.data(), want.data(), want.size()), 0);
    if (GetParam() == "uring" && registered_buffers()) {
      EXPECT_TRUE(is_registered(buf.data(), want.size()));
    }
  }
  env::dma_teardown();  // the next user starts a default pool
}

// Enough requests at once to need the whole ring: the queue depth's worth of parents,
// each split into children, and many single reads in one batch.
TEST_P(FileBackend, FullQueueWithSplitChildrenFitsTheKernelQueue) {
  TempFile f(16 << 20);
  auto dev = make_device(spec(f.path(), "qd=8&mt=4K"));
  ASSERT_TRUE(dev);
  const uint32_t bs = dev->geo().block_size;
  const uint64_t per = (64 << 10) / bs;  // 16 children of 4 KiB each
  AlignedBuffer out(8 * per * bs), in(8 * per * bs);
  out.fill_pattern(8);
  auto cb = [](void* arg, Errc st) {
    auto* counts = static_cast<int*>(arg);
    ++counts[0];
    if (st != Errc::ok) ++counts[1];
  };
  int counts[2] = {0, 0};
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(dev->desc->write(dev->ch, out.data() + i * per * bs, i * per, per, cb, counts).ok());
  ASSERT_TRUE(testing::poll_until(dev->ch, [&] { return counts[0] == 8; }));
  EXPECT_EQ(counts[1], 0);
  counts[0] = counts[1] = 0;
  for (int i = 0; i < 8; ++i)
    ASSERT_TRUE(dev->desc->read(dev->ch, in.data() + i * per * bs, i * per, per, cb, counts).ok());
  ASSERT_TRUE(testing::poll_until(dev->ch, [&] { return counts[0] == 8; }));
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(in, out);
}

TEST_P(FileBackend, DeepQueueOfSmallReads) {
  TempFile f(8 << 20);
  auto dev = make_device(spec(f.path(), "bs=4096"));
  ASSERT_TRUE(dev);
  const uint32_t qd = dev->geo().queue_depth;
  AlignedBuffer out(qd * 4096ul), in(qd * 4096ul);
  out.fill_pattern(9);
  ASSERT_TRUE(dev->sync().write(out.data(), 0, qd).ok());
  int counts[2] = {0, 0};
  auto cb = [](void* arg, Errc st) {
    auto* c = static_cast<int*>(arg);
    ++c[0];
    if (st != Errc::ok) ++c[1];
  };
  // Reversed order so that neighbouring requests are not neighbouring blocks.
  for (uint32_t i = 0; i < qd; ++i) {
    uint32_t lba = qd - 1 - i;
    ASSERT_TRUE(dev->desc->read(dev->ch, in.data() + lba * 4096ul, lba, 1, cb, counts).ok());
  }
  EXPECT_EQ(dev->desc->read(dev->ch, in.data(), 0, 1, cb, counts).code(), Errc::busy);
  ASSERT_TRUE(testing::poll_until(dev->ch, [&] { return counts[0] == static_cast<int>(qd); }));
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(in, out);
}

// An immutable file refuses opening for writing even to root: the device is then read-only.
TEST_P(FileBackend, ReadOnlyFileMakesAReadOnlyDevice) {
  TempFile f(1 << 20);
  int fd = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  int flags = 0;
  bool read_only = false;
  if (geteuid() != 0) {
    read_only = chmod(f.path().c_str(), 0444) == 0;
  } else if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
    flags |= FS_IMMUTABLE_FL;
    read_only = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  }
  if (!read_only) {
    close(fd);
    GTEST_SKIP() << "cannot make a file read-only here";
  }
  {
    auto dev = make_device(spec(f.path()));
    ASSERT_TRUE(dev);
    EXPECT_TRUE(dev->geo().supports(IoType::read));
    EXPECT_FALSE(dev->geo().supports(IoType::write));
    EXPECT_FALSE(dev->geo().supports(IoType::unmap));
    AlignedBuffer buf(dev->geo().block_size);
    EXPECT_TRUE(dev->sync().read(buf.data(), 0, 1).ok());
    EXPECT_EQ(dev->desc->write(dev->ch, buf.data(), 0, 1, nullptr, nullptr).code(), Errc::not_supported);
  }
  if (geteuid() == 0) {
    flags &= ~FS_IMMUTABLE_FL;
    EXPECT_EQ(ioctl(fd, FS_IOC_SETFLAGS, &flags), 0);
  }
  close(fd);
}

// A loop device over a temporary file, detached on destruction; empty when unavailable.
class LoopDevice {
 public:
  explicit LoopDevice(const std::string& backing) {
    if (geteuid() != 0) return;
    FILE* p = popen(fmt::format("losetup -f --show '{}' 2>/dev/null", backing).c_str(), "r");
    if (p == nullptr) return;
    char line[256] = {};
    if (std::fgets(line, sizeof line, p) != nullptr) path_ = line;
    if (pclose(p) != 0) path_.clear();
    while (!path_.empty() && (path_.back() == '\n' || path_.back() == ' ')) path_.pop_back();
  }
  ~LoopDevice() {
    if (!path_.empty()) (void)std::system(fmt::format("losetup -d '{}' 2>/dev/null", path_).c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_P(FileBackend, BlockDeviceThroughALoopDevice) {
  TempFile backing(16 << 20);
  LoopDevice loop(backing.path());
  if (loop.path().empty()) GTEST_SKIP() << "no loop device (needs root and losetup)";
  auto dev = make_device(spec(loop.path()));
  ASSERT_TRUE(dev);
  const Geometry& g = dev->geo();
  int lbs = 0;
  {
    int fd = ::open(loop.path().c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ioctl(fd, BLKSSZGET, &lbs), 0);
    close(fd);
  }
  EXPECT_EQ(g.block_size, static_cast<uint32_t>(lbs));
  EXPECT_EQ(g.num_blocks * g.block_size, 16ull << 20);
  EXPECT_FALSE(g.unmap_zeroes);  // a discard promises nothing about what reads return
  EXPECT_TRUE(g.supports(IoType::write_zeroes));

  const uint32_t bs = g.block_size;
  AlignedBuffer out(64 * bs), in(64 * bs);
  out.fill_pattern(10);
  ASSERT_TRUE(dev->sync().write(out.data(), 100, 64).ok());
  ASSERT_TRUE(dev->sync().flush().ok());
  ASSERT_TRUE(dev->sync().read(in.data(), 100, 64).ok());
  EXPECT_EQ(in, out);
  auto through_file = pread_file(backing.path(), 100ull * bs, 64ull * bs);
  EXPECT_EQ(std::memcmp(through_file.data(), out.data(), 64ull * bs), 0);

  ASSERT_TRUE(dev->sync().write_zeroes(110, 8).ok());
  ASSERT_TRUE(dev->sync().read(in.data(), 100, 64).ok());
  EXPECT_TRUE(in.is_zero(10ull * bs, 8ull * bs));
  EXPECT_EQ(std::memcmp(in.data(), out.data(), 10ull * bs), 0);
  if (g.supports(IoType::unmap)) {
    EXPECT_TRUE(dev->sync().unmap(0, 4096 / bs * 8).ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Kernel, FileBackend, ::testing::Values("uring", "aio"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(FileTarget, ErrnoMapsToErrc) {
  EXPECT_EQ(errno_errc(0), Errc::ok);
  EXPECT_EQ(errno_errc(EIO), Errc::io_error);
  EXPECT_EQ(errno_errc(ENOENT), Errc::not_found);
  EXPECT_EQ(errno_errc(EINVAL), Errc::invalid_argument);
  EXPECT_EQ(errno_errc(ENOSPC), Errc::no_space);
  EXPECT_EQ(errno_errc(EOPNOTSUPP), Errc::not_supported);
  EXPECT_EQ(errno_errc(ECANCELED), Errc::aborted);
  EXPECT_EQ(errno_errc(EAGAIN), Errc::busy);
  EXPECT_EQ(errno_errc(EROFS), Errc::permission);
}

}  // namespace
}  // namespace sluice::bdev
