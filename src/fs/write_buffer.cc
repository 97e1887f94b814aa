#include "fs/write_buffer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/log.h"

namespace sluice::fs {
namespace {

// The header page (docs/format/write-buffer.md).
constexpr size_t kHeaderBytes = 4096;
constexpr char kMagic[8] = {'S', 'F', 'S', 'W', 'B', 'U', 'F', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kOffVersion = 8, kOffBlockSize = 12, kOffBlob = 16, kOffStart = 24, kOffEnd = 32, kOffStore = 40;
constexpr size_t kStoreIdBytes = 48;
constexpr std::string_view kIdlePrefix = "idle-";
// start and end are stored natively (atomic stores) and read as little-endian.
static_assert(std::endian::native == std::endian::little);

Status errno_status(int err, std::string_view what, std::string_view path) {
  return Status(Errc::io_error, fmt::format("{} {}: {}", what, path, std::strerror(err)));
}

bool parse_blob_id(const char* name, uint64_t* id) {
  if (*name == '\0' || *name == '0') return false;
  uint64_t v = 0;
  for (const char* p = name; *p; ++p) {
    if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(*p - '0');
  }
  *id = v;
  return true;
}

}  // namespace

std::string default_write_buffer_dir() {
  if (const char* env = std::getenv("SLUICE_WRITE_BUFFER_DIR")) return env;
  struct stat st;
  if (::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode)) return "/dev/shm/sluice";
  return "";
}

// ---- BufferDir ----------------------------------------------------------------------------

Result<std::unique_ptr<BufferDir>> BufferDir::open(const std::string& root, const std::string& store_id) {
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) return errno_status(errno, "create write-buffer directory", root);
  const std::string path = root + "/" + store_id;
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return errno_status(errno, "create write-buffer directory", path);
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status(errno, "open write-buffer directory", path);
  // The device lock keeps two processes off one image; this keeps two images with one UUID
  // (a copied image) off one directory.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      return Status(Errc::busy, fmt::format("write-buffer directory {} is in use by another mount of a store with "
                                            "the same UUID", path));
    return errno_status(err, "lock write-buffer directory", path);
  }
  std::unique_ptr<BufferDir> dir(new BufferDir(path, store_id, fd));
  // One listing for both kinds of file a process that died leaves: idle buffers go now,
  // buffers of files wait for replay.
  if (DIR* d = ::opendir(path.c_str())) {
    while (dirent* e = ::readdir(d)) {
      uint64_t id = 0;
      if (std::string_view(e->d_name).starts_with(kIdlePrefix))
        (void)::unlinkat(fd, e->d_name, 0);
      else if (parse_blob_id(e->d_name, &id))
        dir->leftovers_.push_back(id);
    }
    ::closedir(d);
  }
  return dir;
}

BufferDir::~BufferDir() {
  (void)::rmdir(path_.c_str());  // only succeeds when empty: a leftover buffer stays
  ::close(fd_);
}

std::string BufferDir::file_of(uint64_t blob) const { return fmt::format("{}/{}", path_, blob); }

std::string BufferDir::idle_file(uint64_t n) const { return fmt::format("{}/{}{}", path_, kIdlePrefix, n); }

Result<BufferImage> read_leftover(const BufferDir& dir, uint64_t blob) {
  const std::string path = dir.file_of(blob);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status(Errc::not_found, fmt::format("{}: no write buffer", path));
    return errno_status(errno, "open write buffer", path);
  }
  auto bad = [&](std::string_view why) {
    ::close(fd);
    return Status(Errc::corrupt, fmt::format("write buffer {}: {}", path, why));
  };
  struct stat st;
  char h[kHeaderBytes];
  if (::fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(kHeaderBytes) ||
      ::pread(fd, h, kHeaderBytes, 0) != static_cast<ssize_t>(kHeaderBytes))
    return bad("shorter than its header");
  if (std::memcmp(h, kMagic, sizeof kMagic) != 0) return bad("no write-buffer magic");
  if (get_le<uint32_t>(h + kOffVersion) != kVersion) return bad(fmt::format("version {}", get_le<uint32_t>(h + kOffVersion)));
  const std::string store(h + kOffStore, strnlen(h + kOffStore, kStoreIdBytes));
  if (store != dir.store_id()) return bad(fmt::format("belongs to store {}", store));
  BufferImage img;
  img.blob = get_le<uint64_t>(h + kOffBlob);
  img.block_size = get_le<uint32_t>(h + kOffBlockSize);
  img.start = get_le<uint64_t>(h + kOffStart);
  const uint64_t end = get_le<uint64_t>(h + kOffEnd);
  if (img.blob != blob) return bad(fmt::format("names blob {}", img.blob));
  if (end <= img.start) {  // empty, or caught between the two stores of a rebase
    ::close(fd);
    return img;
  }
  const uint64_t bytes = end - img.start;
  if (bytes > static_cast<uint64_t>(st.st_size) - kHeaderBytes) return bad("its header claims more bytes than it holds");
  img.data.resize(bytes);
  if (::pread(fd, img.data.data(), bytes, kHeaderBytes) != static_cast<ssize_t>(bytes)) return bad("short read");
  ::close(fd);
  return img;
}

// ---- WriteBuffer --------------------------------------------------------------------------

Result<std::unique_ptr<WriteBuffer>> WriteBuffer::create(const BufferDir* dir, uint64_t blob, uint32_t block_size,
                                                         size_t capacity, size_t align) {
  std::unique_ptr<WriteBuffer> wb(new WriteBuffer());
  const size_t data_bytes = (capacity + 4095) / 4096 * 4096;
  if (dir != nullptr && align <= kHeaderBytes) {
    const std::string path = dir->file_of(blob);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    void* map = MAP_FAILED;
    if (fd >= 0 && ::ftruncate(fd, static_cast<off_t>(kHeaderBytes + data_bytes)) == 0)
      map = ::mmap(nullptr, kHeaderBytes + data_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED) {
      wb->fd_ = fd;
      wb->path_ = path;
      wb->map_ = static_cast<char*>(map);
      wb->map_bytes_ = kHeaderBytes + data_bytes;
    } else {
      log::warn("sluicefs: write buffer {}: {}; this file's unsynced appends will not survive a process crash", path,
                std::strerror(errno));
      if (fd >= 0) {
        ::close(fd);
        ::unlink(path.c_str());
      }
    }
  }
  if (wb->map_ == nullptr) {
    wb->map_ = static_cast<char*>(std::aligned_alloc(std::max<size_t>(align, kHeaderBytes), kHeaderBytes + data_bytes));
    if (wb->map_ == nullptr) return Status(Errc::no_space, "out of memory for a write buffer");
    wb->map_bytes_ = kHeaderBytes + data_bytes;
  }
  char* h = wb->map_;
  std::memset(h, 0, kHeaderBytes);
  put_le<uint32_t>(h + kOffVersion, kVersion);
  put_le<uint32_t>(h + kOffBlockSize, block_size);
  put_le<uint64_t>(h + kOffBlob, blob);
  if (dir != nullptr) std::memcpy(h + kOffStore, dir->store_id().data(), std::min(dir->store_id().size(), kStoreIdBytes - 1));
  std::memcpy(h, kMagic, sizeof kMagic);  // last: a header without its magic is ignored
  wb->data_ = wb->map_ + kHeaderBytes;
  return wb;
}

WriteBuffer::~WriteBuffer() {
  if (fd_ < 0) {
    std::free(map_);
    return;
  }
  ::munmap(map_, map_bytes_);
  ::close(fd_);
  if (!keep_) ::unlink(path_.c_str());
}

// The header's start and end are read by another process only after this one died, so the
// only ordering that matters is program order against the data stores; release stores
// through atomic_ref keep the compiler from moving them.
uint64_t* WriteBuffer::header_field(size_t offset) { return reinterpret_cast<uint64_t*>(map_ + offset); }

void WriteBuffer::set_end(uint64_t end) {
  std::atomic_ref<uint64_t>(*header_field(kOffEnd)).store(end, std::memory_order_release);
}

void WriteBuffer::rebase(uint64_t start) {
  std::atomic_ref<uint64_t>(*header_field(kOffEnd)).store(0, std::memory_order_release);  // end <= start: empty
  std::atomic_ref<uint64_t>(*header_field(kOffStart)).store(start, std::memory_order_release);
}

bool WriteBuffer::idle(const std::string& idle_path) {
  if (fd_ < 0 || keep_) return false;
  rebase(0);
  std::atomic_ref<uint64_t>(*header_field(kOffBlob)).store(0, std::memory_order_release);
  if (::rename(path_.c_str(), idle_path.c_str()) != 0) return false;
  path_ = idle_path;
  return true;
}

bool WriteBuffer::assign(uint64_t blob, const std::string& path) {
  std::atomic_ref<uint64_t>(*header_field(kOffBlob)).store(blob, std::memory_order_release);
  if (::rename(path_.c_str(), path.c_str()) != 0) return false;
  path_ = path;
  return true;
}

}  // namespace sluice::fs
