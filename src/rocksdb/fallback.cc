#include "rocksdb/fallback.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <vector>
#include <system_error>

#include <fmt/format.h>

#include "rocksdb/sluice_uri.h"

namespace sluice::rocksdb_plugin {
namespace {

constexpr std::string_view kTombstone = "tombstone ";
constexpr std::string_view kFinished = "finished";

// The record is tiny (one line per deleted kernel file); a bound keeps a damaged one from
// making us read forever.
constexpr uint64_t kMaxRecordBytes = 64u << 20;

}  // namespace

Fallback::Fallback(fs::FileSystem* fs, std::shared_ptr<void> keep_alive, std::string kernel_dir,
                   std::string sluice_dir)
    : fs_(fs),
      keep_alive_(std::move(keep_alive)),
      kernel_dir_(std::move(kernel_dir)),
      sluice_dir_(std::move(sluice_dir)) {}

Status Fallback::check_database_file(const std::string& rocksdb_path) const {
  const std::string path = normalize_path(rocksdb_path);
  const size_t slash = path.rfind('/');
  const std::string_view name = std::string_view(path).substr(slash + 1);
  const bool db_file = name == "CURRENT" || name == "IDENTITY" || name.starts_with("MANIFEST-") ||
                       name.starts_with("OPTIONS-");
  const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  if (!db_file || dir == kernel_dir_) return Status::Ok();
  return Status(Errc::invalid_argument,
                fmt::format("fallback={} does not name this database: RocksDB opened {}, so the database is {}; "
                            "give fallback= the database's own directory (the same as --db)",
                            kernel_dir_, path, dir));
}

std::string Fallback::record_path() const {
  return sluice_dir_ == "/" ? std::string("/") + kRecordName : sluice_dir_ + "/" + kRecordName;
}

Status Fallback::load_locked() {
  if (loaded_) return Status::Ok();
  auto f = fs_->open(record_path(), {});
  if (!f.ok()) {
    if (f.status().code() != Errc::not_found) return f.status();
    loaded_ = true;  // no record yet: nothing deleted, not finished
    return Status::Ok();
  }
  record_found_ = true;
  const uint64_t size = (*f)->size();
  if (size > kMaxRecordBytes)
    return Status(Errc::corrupt, fmt::format("{}: {} bytes, too large for a fallback record", record_path(), size));
  std::string text(size, '\0');
  for (uint64_t off = 0; off < size;) {
    auto n = (*f)->pread(text.data() + off, size - off, off);
    if (!n.ok()) return n.status();
    if (*n == 0) {
      text.resize(off);
      break;
    }
    off += *n;
  }
  (void)(*f)->close();
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) break;  // torn last line: never acknowledged
    std::string_view line(text.data() + pos, end - pos);
    if (line == kFinished) {
      finished_ = true;
    } else if (line.substr(0, kTombstone.size()) == kTombstone) {
      tombstones_.emplace(line.substr(kTombstone.size()));
    }
    pos = end + 1;
  }
  loaded_ = true;
  return Status::Ok();
}

Status Fallback::append_locked(const std::string& line) {
  Status st = fs_->mkdirs(sluice_dir_);
  if (!st.ok() && st.code() != Errc::exists) return st;
  auto f = fs_->open(record_path(), {.write = true, .create = true});
  if (!f.ok()) return f.status();
  st = (*f)->append(line.data(), line.size());
  if (st.ok()) st = (*f)->sync();  // the data and the file's creation
  Status closed = (*f)->close();
  return st.ok() ? closed : st;
}

Result<std::string> Fallback::kernel_path(const std::string& sluice_path) {
  const size_t slash = sluice_path.rfind('/');
  if (slash == std::string::npos) return std::string();
  const std::string parent = slash == 0 ? "/" : sluice_path.substr(0, slash);
  const std::string name = sluice_path.substr(slash + 1);
  if (parent != sluice_dir_ || name.empty() || name == kRecordName) return std::string();
  std::lock_guard lock(mu_);
  SLUICE_RETURN_IF_ERROR(load_locked());
  if (finished_ || tombstones_.count(name)) return std::string();
  return kernel_dir_ + "/" + name;
}

Result<std::vector<std::string>> Fallback::kernel_names() {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    SLUICE_RETURN_IF_ERROR(load_locked());
    if (finished_) return names;
  }
  std::error_code ec;
  std::filesystem::directory_iterator it(kernel_dir_, ec);
  if (ec) return Status(Errc::io_error, fmt::format("fallback directory {}: {}", kernel_dir_, ec.message()));
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return Status(Errc::io_error, fmt::format("fallback directory {}: {}", kernel_dir_, ec.message()));
    if (!it->is_regular_file(ec)) continue;
    std::string name = it->path().filename().string();
    if (name == kRecordName) continue;
    names.push_back(std::move(name));
  }
  std::lock_guard lock(mu_);
  std::erase_if(names, [this](const std::string& n) { return tombstones_.count(n) != 0; });
  return names;
}

Result<std::vector<Fallback::Remaining>> Fallback::remaining() {
  auto names = kernel_names();
  if (!names.ok()) return names.status();
  std::vector<Remaining> out;
  for (const auto& name : *names) {
    const std::string in_sluice = sluice_dir_ == "/" ? "/" + name : sluice_dir_ + "/" + name;
    auto st = fs_->stat(in_sluice);
    if (st.ok()) continue;  // shadowed: RocksDB reads the SluiceFS file
    if (st.status().code() != Errc::not_found) return st.status();
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(kernel_dir_ + "/" + name, ec);
    if (ec) return Status(Errc::io_error, fmt::format("{}/{}: {}", kernel_dir_, name, ec.message()));
    out.push_back({name, size});
  }
  std::sort(out.begin(), out.end(), [](const Remaining& a, const Remaining& b) { return a.name < b.name; });
  return out;
}

Status Fallback::tombstone(const std::string& name) {
  std::lock_guard lock(mu_);
  SLUICE_RETURN_IF_ERROR(load_locked());
  if (tombstones_.count(name)) return Status::Ok();
  SLUICE_RETURN_IF_ERROR(append_locked(fmt::format("{}{}\n", kTombstone, name)));
  tombstones_.insert(name);
  return Status::Ok();
}

Status Fallback::move_in(const std::string& name, const std::string& sluice_target) {
  const std::string from = kernel_dir_ + "/" + name;
  const int fd = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status(errno, fmt::format("open {}", from));
  auto f = fs_->open(sluice_target, {.write = true, .create = true, .truncate = true});
  Status st = f.ok() ? Status::Ok() : f.status();
  std::vector<char> buf(1u << 20);
  // Bounded by the file's size at open: nobody writes the kernel directory any more.
  struct stat sb {};
  const uint64_t size = ::fstat(fd, &sb) == 0 ? static_cast<uint64_t>(sb.st_size) : 0;
  for (uint64_t done = 0; st.ok() && done < size;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) st = errno_status(errno, fmt::format("read {}", from));
    if (n <= 0) break;
    st = (*f)->append(buf.data(), static_cast<size_t>(n));
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
  if (st.ok()) st = (*f)->sync();
  if (f.ok()) {
    Status closed = (*f)->close();
    if (st.ok()) st = closed;
  }
  return st.ok() ? tombstone(name) : st;
}

Status Fallback::finish() {
  std::lock_guard lock(mu_);
  SLUICE_RETURN_IF_ERROR(load_locked());
  if (finished_) return Status::Ok();
  SLUICE_RETURN_IF_ERROR(append_locked(std::string(kFinished) + "\n"));
  finished_ = true;
  return Status::Ok();
}

Result<bool> Fallback::finished() {
  std::lock_guard lock(mu_);
  SLUICE_RETURN_IF_ERROR(load_locked());
  return finished_;
}

Result<bool> Fallback::unfinished() {
  std::lock_guard lock(mu_);
  SLUICE_RETURN_IF_ERROR(load_locked());
  return record_found_ && !finished_;
}

}  // namespace sluice::rocksdb_plugin
