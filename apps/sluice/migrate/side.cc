#include "migrate/side.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "rocksdb/fallback.h"

namespace sluice::migrate {

bool is_internal_name(const std::string& name) {
  const std::string_view suffix = kPartialSuffix;
  return name == kManifestName || name == rocksdb_plugin::Fallback::kRecordName ||
         (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0);
}

Result<std::vector<FileEntry>> list_files(const Side& side, std::vector<std::string>* subdirs) {
  std::vector<std::string> names;
  ::rocksdb::IOStatus s = side.fs->GetChildren(side.dir, {}, &names, nullptr);
  if (!s.ok()) return from_rocksdb(s, side.label);
  std::vector<FileEntry> out;
  for (const auto& name : names) {
    if (name == "." || name == ".." || is_internal_name(name)) continue;
    bool dir = false;
    s = side.fs->IsDirectory(side.path(name), {}, &dir, nullptr);
    if (!s.ok()) return from_rocksdb(s, side.path(name));
    if (dir) {
      if (subdirs) subdirs->push_back(name);
      continue;
    }
    uint64_t size = 0;
    s = side.fs->GetFileSize(side.path(name), {}, &size, nullptr);
    if (!s.ok()) return from_rocksdb(s, side.path(name));
    out.push_back({name, size});
  }
  std::sort(out.begin(), out.end(), [](const FileEntry& a, const FileEntry& b) {
    const bool ac = a.name == "CURRENT", bc = b.name == "CURRENT";
    return ac != bc ? bc : a.name < b.name;
  });
  return out;
}

Result<std::string> read_small_file(const Side& side, const std::string& path) {
  constexpr uint64_t kMaxBytes = 64u << 20;  // a bound against a damaged record
  std::unique_ptr<::rocksdb::FSSequentialFile> f;
  ::rocksdb::IOStatus s = side.fs->NewSequentialFile(path, {}, &f, nullptr);
  if (!s.ok()) return from_rocksdb(s, path);
  std::string text;
  std::vector<char> buf(1u << 16);
  while (text.size() <= kMaxBytes) {
    ::rocksdb::Slice got;
    s = f->Read(buf.size(), {}, &got, buf.data(), nullptr);
    if (!s.ok()) return from_rocksdb(s, path);
    if (got.empty()) return text;
    text.append(got.data(), got.size());
  }
  return Status(Errc::corrupt, fmt::format("{}: larger than {} bytes: not a migration record", path, kMaxBytes));
}

Status from_rocksdb(const ::rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  Errc code = Errc::io_error;
  if (s.IsNotFound() || s.IsPathNotFound()) code = Errc::not_found;
  else if (s.IsNoSpace()) code = Errc::no_space;
  else if (s.IsCorruption()) code = Errc::corrupt;
  else if (s.IsInvalidArgument()) code = Errc::invalid_argument;
  else if (s.IsNotSupported()) code = Errc::not_supported;
  std::string msg = s.getState() ? s.getState() : s.ToString();
  if (code == Errc::no_space && msg.find("space") == std::string::npos) msg = "out of space: " + msg;
  return Status(code, what.empty() ? msg : fmt::format("{}: {}", what, msg));
}

}  // namespace sluice::migrate
