#include "migrate/endpoints.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "base/size.h"
#include "rocksdb/sluice_rocksdb.h"

namespace sluice::migrate {

Side kernel_side(const std::string& dir) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(dir, ec).lexically_normal().string();
  if (ec || abs.empty()) abs = dir;
  if (abs.size() > 1 && abs.back() == '/') abs.pop_back();
  return Side{::rocksdb::FileSystem::Default(), abs, abs};
}

Status check_kernel_source(const std::string& dir) {
  std::error_code ec;
  const auto st = std::filesystem::status(dir, ec);
  if (ec || !std::filesystem::exists(st)) return Status(Errc::not_found, fmt::format("source {}: no such directory", dir));
  if (!std::filesystem::is_directory(st)) return Status(Errc::invalid_argument, fmt::format("source {}: not a directory", dir));
  if (!std::filesystem::exists(dir + "/CURRENT", ec))
    return Status(Errc::invalid_argument, fmt::format("source {} holds no RocksDB database (no CURRENT file)", dir));
  // F_GETLK only asks; a read-only descriptor is enough, so the source stays untouched.
  const int fd = ::open((dir + "/LOCK").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    const bool held = ::fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
    ::close(fd);
    if (held)
      return Status(Errc::busy, fmt::format("source {} is open in process {}: close the database first (or migrate it "
                                            "while it runs with fallback=, docs/migration.md)",
                                            dir, fl.l_pid));
  }
  return Status::Ok();
}

Result<SluiceEnd> open_sluice(const std::string& uri, const std::string& db, bool allow_fallback) {
  auto parsed = rocksdb_plugin::parse_uri(uri);
  if (!parsed.ok()) return parsed.status();
  if (!allow_fallback && !parsed->fallback.empty())
    return Status(Errc::invalid_argument, fmt::format("{}: drop fallback= here (it is for running a database)", uri));
  if (!db.empty() && db[0] != '/') return Status(Errc::invalid_argument, fmt::format("--db {}: want an absolute path", db));
  std::shared_ptr<::rocksdb::FileSystem> fs;
  ::rocksdb::Status s = rocksdb_plugin::NewFileSystem(uri, &fs);
  if (!s.ok()) return Status(Errc::io_error, s.getState() ? s.getState() : s.ToString());
  auto* sfs = dynamic_cast<rocksdb_plugin::SluiceFileSystem*>(fs.get());
  if (sfs == nullptr) return Status(Errc::io_error, fmt::format("{}: not a SluiceFS file system", uri));
  const std::string dir = db.empty() ? "" : rocksdb_plugin::normalize_path(db);
  if (!dir.empty() && !sfs->route(dir).sluice)
    return Status(Errc::invalid_argument,
                  fmt::format("--db {} is not under root={} of {}: it would not be on SluiceFS", db, parsed->root, uri));
  return SluiceEnd{Side{std::move(fs), dir, fmt::format("{} {}", uri, dir)}, sfs};
}

Result<Manifest> prepare_destination(const Side& dst, const std::string& source, bool force) {
  ::rocksdb::IOStatus s = dst.fs->CreateDirIfMissing(dst.dir, {}, nullptr);
  if (!s.ok()) return from_rocksdb(s, dst.label);
  auto manifest = Manifest::load(dst);
  if (!manifest.ok() && !force) return manifest.status();
  const bool resumable = manifest.ok() && manifest->found() && manifest->source() == source;
  if (resumable) return manifest;
  std::vector<std::string> names, present;
  s = dst.fs->GetChildren(dst.dir, {}, &names, nullptr);
  if (!s.ok()) return from_rocksdb(s, dst.label);
  for (const auto& n : names)
    if (n != "." && n != "..") present.push_back(n);
  if (present.empty()) return Manifest();
  if (!force) {
    std::string what = manifest.ok() && manifest->found()
                           ? fmt::format("an unfinished copy of {}", manifest->source())
                           : fmt::format("{} file(s) ({}{})", present.size(), present.front(),
                                         present.size() > 1 ? ", ..." : "");
    return Status(Errc::exists, fmt::format("destination {} already holds {}: another database? --force deletes its "
                                            "files first",
                                            dst.label, what));
  }
  for (const auto& n : present) {
    bool dir = false;
    if (dst.fs->IsDirectory(dst.path(n), {}, &dir, nullptr).ok() && dir) continue;  // never recursive
    s = dst.fs->DeleteFile(dst.path(n), {}, nullptr);
    if (!s.ok()) return from_rocksdb(s, dst.path(n));
  }
  return Manifest();
}

Status check_fallback_finished(const SluiceEnd& end) {
  auto unfinished = end.fs->fallback_unfinished(end.side.dir);
  if (!unfinished.ok()) return unfinished.status();
  if (!*unfinished) return Status::Ok();
  return Status(Errc::invalid_argument,
                fmt::format("{} is still in fallback mode (some files are only in its kernel directory): run `sluice "
                            "migrate finish` with its fallback= URI first",
                            end.side.label));
}

Status check_space(const Side& dst, uint64_t bytes) {
  uint64_t free_bytes = 0;
  if (!dst.fs->GetFreeSpace(dst.dir, {}, &free_bytes, nullptr).ok()) return Status::Ok();  // unknown: try
  if (bytes <= free_bytes) return Status::Ok();
  return Status(Errc::no_space, fmt::format("out of space: {} has {} free, the copy needs {}", dst.label,
                                            format_size(free_bytes), format_size(bytes)));
}

}  // namespace sluice::migrate
