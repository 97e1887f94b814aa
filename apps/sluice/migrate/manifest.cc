#include "migrate/manifest.h"

#include <charconv>

#include <fmt/format.h>

namespace sluice::migrate {
namespace {

constexpr std::string_view kHeader = "sluice-migrate 1 ";
}  // namespace

Result<Manifest> Manifest::load(const Side& dst) {
  Manifest m;
  const std::string path = dst.path(kManifestName);
  if (!dst.fs->FileExists(path, {}, nullptr).ok()) return m;
  auto text = read_small_file(dst, path);
  if (!text.ok()) return text.status();
  m.found_ = true;
  size_t pos = 0;
  bool header = true;
  while (pos < text->size()) {
    const size_t end = text->find('\n', pos);
    if (end == std::string::npos) break;  // torn: that file was never recorded
    std::string_view line(text->data() + pos, end - pos);
    pos = end + 1;
    if (header) {
      if (line.substr(0, kHeader.size()) != kHeader)
        return Status(Errc::corrupt, fmt::format("{}: not a sluice migration record", path));
      m.source_ = std::string(line.substr(kHeader.size()));
      header = false;
      continue;
    }
    // "<crc> <size> <name>"; a malformed line is skipped (its file is copied again).
    const size_t s1 = line.find(' '), s2 = s1 == std::string_view::npos ? s1 : line.find(' ', s1 + 1);
    if (s2 == std::string_view::npos || s2 + 1 >= line.size()) continue;
    Entry e;
    auto r1 = std::from_chars(line.data(), line.data() + s1, e.crc, 16);
    auto r2 = std::from_chars(line.data() + s1 + 1, line.data() + s2, e.size);
    if (r1.ec != std::errc() || r2.ec != std::errc()) continue;
    m.entries_[std::string(line.substr(s2 + 1))] = e;
  }
  if (header) m.found_ = false;  // torn before the header was durable: as if absent
  return m;
}

const Manifest::Entry* Manifest::find(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

Status Manifest::write(const std::string& text) {
  ::rocksdb::IOStatus s = file_->Append(text, {}, nullptr);
  if (s.ok()) s = file_->Sync({}, nullptr);
  return from_rocksdb(s, path_);
}

// Rewriting in place: a crash in between loses only progress, never a file (files are
// renamed into place only after they verified, so the next run skips nothing it should not).
Status Manifest::start(const Side& dst, const std::string& source) {
  path_ = dst.path(kManifestName);
  source_ = source;
  ::rocksdb::IOStatus s = dst.fs->NewWritableFile(path_, {}, &file_, nullptr);
  if (!s.ok()) return from_rocksdb(s, path_);
  std::string text = fmt::format("{}{}\n", kHeader, source);
  for (const auto& [name, e] : entries_) text += fmt::format("{:08x} {} {}\n", e.crc, e.size, name);
  SLUICE_RETURN_IF_ERROR(write(text));
  std::unique_ptr<::rocksdb::FSDirectory> dir;  // the record's creation is durable too
  s = dst.fs->NewDirectory(dst.dir, {}, &dir, nullptr);
  if (s.ok()) s = dir->Fsync({}, nullptr);
  found_ = true;
  return from_rocksdb(s, dst.label);
}

Status Manifest::add(const std::string& name, uint64_t size, uint32_t crc) {
  SLUICE_RETURN_IF_ERROR(write(fmt::format("{:08x} {} {}\n", crc, size, name)));
  entries_[name] = {size, crc};
  return Status::Ok();
}

Status Manifest::remove(const Side& dst) {
  if (file_) {
    ::rocksdb::IOStatus s = file_->Close({}, nullptr);
    file_.reset();
    if (!s.ok()) return from_rocksdb(s, path_);
  }
  const std::string path = dst.path(kManifestName);
  ::rocksdb::IOStatus s = dst.fs->DeleteFile(path, {}, nullptr);
  if (!s.ok() && !s.IsNotFound() && !s.IsPathNotFound()) return from_rocksdb(s, path);
  std::unique_ptr<::rocksdb::FSDirectory> dir;
  s = dst.fs->NewDirectory(dst.dir, {}, &dir, nullptr);
  if (s.ok()) s = dir->Fsync({}, nullptr);
  found_ = false;
  return from_rocksdb(s, dst.label);
}

}  // namespace sluice::migrate
