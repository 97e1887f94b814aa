#include "env/pagemap.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include <fmt/format.h>

namespace sluice::env::detail {
namespace {

constexpr uint64_t kPresent = uint64_t{1} << 63;
constexpr uint64_t kPfnMask = (uint64_t{1} << 55) - 1;
constexpr size_t kBatch = 512;  // entries per pread

// Opened once and kept for the life of the process.
Result<int> pagemap_fd() {
  static int fd = -1;
  static int err = 0;
  static std::once_flag once;
  std::call_once(once, [] {
    fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) err = errno;
  });
  if (fd < 0) return errno_status(err, "open /proc/self/pagemap");
  return fd;
}

}  // namespace

Status physical_pages(uintptr_t va, size_t pages, uint64_t* out) {
  auto fd = pagemap_fd();
  if (!fd.ok()) return fd.status();
  uint64_t entries[kBatch];
  uintptr_t first = va >> kPageShift;
  for (size_t done = 0; done < pages;) {
    size_t n = std::min(kBatch, pages - done);
    auto offset = static_cast<off_t>((first + done) * sizeof(uint64_t));
    ssize_t got = pread(*fd, entries, n * sizeof(uint64_t), offset);
    if (got < 0) return errno_status(errno, "read /proc/self/pagemap");
    if (static_cast<size_t>(got) != n * sizeof(uint64_t)) {
      return Status(Errc::io_error, "short read from /proc/self/pagemap");
    }
    for (size_t i = 0; i < n; ++i) {
      uintptr_t page = (first + done + i) << kPageShift;
      if (!(entries[i] & kPresent)) {
        return Status(Errc::not_found, fmt::format("page {:#x} is not resident", page));
      }
      uint64_t pfn = entries[i] & kPfnMask;
      if (pfn == 0) {
        return Status(Errc::permission,
                      "physical addresses are unavailable: /proc/self/pagemap shows no page "
                      "frame numbers (needs CAP_SYS_ADMIN)");
      }
      out[done + i] = pfn << kPageShift;
    }
    done += n;
  }
  return Status::Ok();
}

Result<uint64_t> physical_address(uintptr_t va) {
  uint64_t pa = 0;
  SLUICE_RETURN_IF_ERROR(physical_pages(va, 1, &pa));
  return pa | (va & ((uintptr_t{1} << kPageShift) - 1));
}

}  // namespace sluice::env::detail
