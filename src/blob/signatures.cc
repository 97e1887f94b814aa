// libblkid probes a file descriptor, not a buffer, and a bdev may have no kernel device at all
// (malloc:, nvme: in userspace, lvol:): so the windows are laid out at their offsets in a
// sparse memory file of the device's size, and libblkid probes that.
#include "blob/signatures.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string_view>

#include <blkid/blkid.h>
#include <fmt/format.h>

#include "base/unique_fd.h"

namespace sluice::blob {
namespace {

struct ProbeDeleter {
  void operator()(blkid_struct_probe* p) const { blkid_free_probe(p); }
};

Status write_all(int fd, const std::string& bytes, uint64_t offset) {
  for (size_t done = 0; done < bytes.size();) {
    ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return errno_status(n < 0 ? errno : EIO, "writing the probe copy");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

std::string value(blkid_probe pr, const char* name) {
  const char* v = nullptr;
  if (blkid_probe_lookup_value(pr, name, &v, nullptr) != 0 || v == nullptr) return "";
  return v;
}

// "an ext4", "a gpt": the article as the type's first letter suggests.
std::string with_article(const std::string& word) {
  const bool vowel = !word.empty() && std::string_view("aeiouAEIOU").find(word[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + word;
}

std::string describe(blkid_probe pr) {
  std::string type = value(pr, "TYPE");
  if (type.empty()) return fmt::format("{} partition table", with_article(value(pr, "PTTYPE")));
  const std::string usage = value(pr, "USAGE");
  std::string what = usage == "filesystem" ? "filesystem"
                     : usage == "raid"     ? "RAID or volume-manager member"
                     : usage == "crypto"   ? "encrypted volume"
                                           : "signature";
  std::string details;
  if (auto label = value(pr, "LABEL"); !label.empty()) details += fmt::format("label '{}'", label);
  if (auto uuid = value(pr, "UUID"); !uuid.empty())
    details += fmt::format("{}UUID {}", details.empty() ? "" : ", ", uuid);
  return fmt::format("{} {}{}", with_article(type), what, details.empty() ? "" : " (" + details + ")");
}

}  // namespace

Result<std::vector<std::string>> find_signatures(const DeviceWindows& w) {
  UniqueFd f(::memfd_create("sluice-probe", MFD_CLOEXEC));
  if (!f.valid()) return errno_status(errno, "memfd_create for the signature probe");
  if (::ftruncate(f.get(), static_cast<off_t>(w.device_bytes)) != 0)
    return errno_status(errno, "sizing the signature probe's copy");
  SLUICE_RETURN_IF_ERROR(write_all(f.get(), w.head, 0));
  SLUICE_RETURN_IF_ERROR(write_all(f.get(), w.tail, w.tail_offset));

  std::unique_ptr<blkid_struct_probe, ProbeDeleter> pr(blkid_new_probe());
  if (!pr) return Status(Errc::no_space, "libblkid: cannot allocate a probe");
  if (blkid_probe_set_device(pr.get(), f.get(), 0, static_cast<blkid_loff_t>(w.device_bytes)) != 0)
    return Status(Errc::io_error, "libblkid: cannot probe the device copy");
  (void)blkid_probe_set_sectorsize(pr.get(), w.block_size);
  blkid_probe_enable_superblocks(pr.get(), 1);
  blkid_probe_set_superblocks_flags(
      pr.get(), BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE | BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_BADCSUM);
  blkid_probe_enable_partitions(pr.get(), 1);
  blkid_probe_set_partitions_flags(pr.get(), BLKID_PARTS_MAGIC);
  std::vector<std::string> found;
  int rc;
  // Each call reports the next signature (as wipefs lists them); 1 when there are no more.
  while ((rc = blkid_do_probe(pr.get())) == 0) found.push_back(describe(pr.get()));
  if (rc < 0) return Status(Errc::io_error, "libblkid failed while probing for signatures");
  return found;
}

}  // namespace sluice::blob
