// The malloc bdev: a RAM disk. Channels on any thread share one zero-filled mapping,
// committed when the disk is made; like a real disk, concurrent writes to the same blocks
// are the caller's race to avoid.
#include <sys/mman.h>

#include <cstdint>
#include <cstring>

#include <fmt/format.h>

#include "base/size.h"
#include "bdev/channel.h"
#include "bdev/modules.h"
#include "env/env.h"

namespace sluice::bdev {
namespace {

class MallocQueue final : public BackendQueue {
 public:
  MallocQueue(char* base, uint32_t block_size) : base_(base), bs_(block_size) {}

  void submit(BdevIo* io) override {
    char* at = base_ + io->offset_blocks * bs_;
    switch (io->type) {
      case IoType::read:
        for (int i = 0; i < io->iovcnt; at += io->iovs[i].iov_len, ++i)
          std::memcpy(io->iovs[i].iov_base, at, io->iovs[i].iov_len);
        break;
      case IoType::write:
        for (int i = 0; i < io->iovcnt; at += io->iovs[i].iov_len, ++i)
          std::memcpy(at, io->iovs[i].iov_base, io->iovs[i].iov_len);
        break;
      case IoType::unmap:
      case IoType::write_zeroes:
        std::memset(at, 0, io->num_blocks * bs_);
        break;
      case IoType::flush:
      case IoType::reset:
        break;
    }
    io->channel->complete(io, Errc::ok);
  }

 private:
  char* base_;
  uint32_t bs_;
};

class MallocBdev final : public Bdev {
 public:
  MallocBdev(std::string name, Geometry g, char* base, std::string spec)
      : Bdev(std::move(name), g), base_(base), spec_(std::move(spec)) {}
  ~MallocBdev() override { munmap(base_, geometry().size_bytes()); }

  std::string spec() const override { return spec_; }
  Result<std::unique_ptr<BackendQueue>> create_queue() override {
    return std::unique_ptr<BackendQueue>(new MallocQueue(base_, geometry().block_size));
  }

 private:
  char* base_;
  std::string spec_;
};

// The whole disk is committed at creation, as a disk's capacity exists before its first
// write (env.h says why the data path must not fault): reserved 2 MiB hugepages when enough
// are free, else ordinary pages (transparent hugepages where allowed). Returns MAP_FAILED
// with errno set on failure.
void* map_disk_memory(size_t bytes) {
  constexpr size_t kHugepage = 2u << 20;
  if (bytes % kHugepage == 0) {
    if (void* p = env::map_hugepage_memory(bytes); p != MAP_FAILED) return p;
  }
  return env::map_committed_memory(bytes);
}

}  // namespace

Result<std::shared_ptr<Bdev>> make_malloc_bdev(const SpecArgs& args) {
  SLUICE_RETURN_IF_ERROR(args.check_known({"bs", "qd", "mt", "sparse"}));
  // sparse=1: memory is committed as blocks are first written, so a disk far bigger than
  // RAM can stand in for a large device in tests as long as little of it is written; the
  // data path then takes a page fault per 4 KiB first touched.
  bool sparse = false;
  if (auto it = args.options.find("sparse"); it != args.options.end()) {
    if (it->second != "0" && it->second != "1")
      return Status(Errc::invalid_argument, fmt::format("malloc: sparse={} (want 0 or 1)", it->second));
    sparse = it->second == "1";
  }
  auto size = parse_size(args.target);
  if (!size.ok()) return Status(Errc::invalid_argument, fmt::format("malloc: {}", size.status().message()));
  Geometry g;
  g.queue_depth = 1024;
  SLUICE_RETURN_IF_ERROR(args.apply_common(g));
  g.num_blocks = *size / g.block_size;
  // The disk is committed at creation (map_disk_memory): one bigger than RAM would bring the
  // OOM killer, not an error.
  if (const uint64_t ram = physical_memory_bytes(); !sparse && *size > ram / 4 * 3) {
    return Status(Errc::invalid_argument, fmt::format("malloc: {} is more than three quarters of this machine's memory ({})",
                                                      format_size(*size), format_size(ram)));
  }
  if (g.num_blocks == 0) return Status(Errc::invalid_argument, fmt::format("malloc: size {} is smaller than one block", *size));
  g.supported = io_bit(IoType::read) | io_bit(IoType::write) | io_bit(IoType::flush) | io_bit(IoType::unmap) |
                io_bit(IoType::write_zeroes) | io_bit(IoType::reset);
  g.unmap_zeroes = true;
  void* mem = sparse ? mmap(nullptr, g.size_bytes(), PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                     : map_disk_memory(g.size_bytes());
  if (mem == MAP_FAILED) return errno_status(errno, fmt::format("malloc: cannot map {} bytes", g.size_bytes()));
  return std::shared_ptr<Bdev>(
      new MallocBdev(args.name, g, static_cast<char*>(mem),
                     fmt::format("malloc:{}{}", format_size(*size), sparse ? "?sparse=1" : "")));
}

}  // namespace sluice::bdev
