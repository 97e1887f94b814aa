#include "migrate/copier.h"

#include <csignal>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <rocksdb/env.h>

#include "base/crc32c.h"
#include "base/size.h"
#include "migrate/progress.h"
#include "migrate/verify.h"

namespace sluice::migrate {
namespace {

// Streams src into a new dst file (truncating any partial one) and syncs it. `limit` stops
// early (the test hook); the result is the source's checksum.
Result<Checksum> stream(const Side& src, const std::string& from, const Side& dst, const std::string& to,
                        uint64_t expected, uint64_t limit) {
  std::unique_ptr<::rocksdb::FSSequentialFile> in;
  ::rocksdb::IOStatus s = src.fs->NewSequentialFile(from, {}, &in, nullptr);
  if (!s.ok()) return from_rocksdb(s, from);
  std::unique_ptr<::rocksdb::FSWritableFile> out;
  s = dst.fs->NewWritableFile(to, {}, &out, nullptr);
  if (!s.ok()) return from_rocksdb(s, to);
  std::vector<char> buf(1u << 20);
  Checksum sum;
  // Bounded: a source that grows while we copy (a running database) is caught by the size
  // check below instead of being chased.
  while (sum.size < limit && sum.size <= expected) {
    ::rocksdb::Slice got;
    s = in->Read(std::min<uint64_t>(buf.size(), limit - sum.size), {}, &got, buf.data(), nullptr);
    if (!s.ok()) return from_rocksdb(s, from);
    if (got.empty()) break;
    s = out->Append(got, {}, nullptr);
    if (!s.ok()) return from_rocksdb(s, to);
    sum.crc = crc32c(got.data(), got.size(), sum.crc);
    sum.size += got.size();
  }
  s = out->Sync({}, nullptr);
  if (s.ok()) s = out->Close({}, nullptr);
  if (!s.ok()) return from_rocksdb(s, to);
  return sum;
}

Status sync_dir(const Side& side) {
  std::unique_ptr<::rocksdb::FSDirectory> dir;
  ::rocksdb::IOStatus s = side.fs->NewDirectory(side.dir, {}, &dir, nullptr);
  if (s.ok()) s = dir->Fsync({}, nullptr);
  return from_rocksdb(s, side.label);
}

// Copies one file: see copier.h for the order of steps and why.
Status copy_one(const Side& src, const Side& dst, ::rocksdb::Env* dst_env, const FileEntry& f, bool interrupt,
                bool kill, Checksum* out) {
  const std::string from = src.path(f.name), to = dst.path(f.name), partial = to + kPartialSuffix;
  auto sum = stream(src, from, dst, partial, f.size, interrupt ? f.size / 2 : UINT64_MAX);
  if (!sum.ok()) return sum.status();
  if (interrupt && kill) std::raise(SIGKILL);
  if (interrupt)
    return Status(Errc::aborted, fmt::format("{}: stopped half way by SLUICE_MIGRATE_FAIL_AFTER (a test hook)", f.name));
  if (sum->size != f.size)
    return Status(Errc::aborted, fmt::format("{}: the source changed while it was copied ({} bytes, then {}): is the "
                                             "database still open?",
                                             from, f.size, sum->size));
  auto back = file_checksum(dst, partial);
  if (!back.ok()) return back.status();
  if (back->size != sum->size || back->crc != sum->crc)
    return Status(Errc::corrupt, fmt::format("{}: the copy differs from the source (crc32c {:08x}, {} bytes; source "
                                             "{:08x}, {} bytes)",
                                             f.name, back->crc, back->size, sum->crc, sum->size));
  if (is_sst(f.name)) {
    Status st = verify_sst(dst_env, partial);
    if (!st.ok()) return Status(st.code(), fmt::format("{} (from {}): {}", f.name, from, st.message()));
  }
  ::rocksdb::IOStatus s = dst.fs->RenameFile(partial, to, {}, nullptr);
  if (!s.ok()) return from_rocksdb(s, to);
  SLUICE_RETURN_IF_ERROR(sync_dir(dst));
  *out = *sum;
  return Status::Ok();
}

// RocksDB never changes an SST or blob file once written, nor reuses its name; the others
// (MANIFEST, LOG, WAL, CURRENT, ...) may have changed at the same size if the database ran
// between two runs, so their source is checksummed again (they are small, or few).
bool immutable(const std::string& name) {
  return is_sst(name) || (name.size() > 5 && name.compare(name.size() - 5, 5, ".blob") == 0);
}

bool already_verified(const Side& src, const Side& dst, const Manifest* manifest, const FileEntry& f) {
  if (manifest == nullptr) return false;
  const Manifest::Entry* e = manifest->find(f.name);
  if (e == nullptr || e->size != f.size) return false;  // new, or changed since
  uint64_t size = 0;
  if (!dst.fs->GetFileSize(dst.path(f.name), {}, &size, nullptr).ok() || size != f.size) return false;
  if (immutable(f.name)) return true;
  auto now = file_checksum(src, src.path(f.name));
  return now.ok() && now->size == e->size && now->crc == e->crc;
}

}  // namespace

Result<CopyStats> copy_files(const Side& src, const Side& dst, const std::vector<FileEntry>& files,
                             const CopyOptions& opts) {
  std::unique_ptr<::rocksdb::Env> dst_env = ::rocksdb::NewCompositeEnv(dst.fs);
  uint64_t total_bytes = 0;
  for (const auto& f : files) total_bytes += f.size;
  Progress progress(opts.progress, opts.verb, files.size(), total_bytes);
  CopyStats stats;
  uint64_t done_files = 0, done_bytes = 0;
  for (const auto& f : files) {
    if (already_verified(src, dst, opts.manifest, f)) {
      ++stats.skipped;
      stats.skipped_bytes += f.size;
    } else {
      const bool interrupt = opts.fail_after >= 0 && stats.files == static_cast<uint64_t>(opts.fail_after);
      Checksum sum;
      Status st = copy_one(src, dst, dst_env.get(), f, interrupt, opts.fail_by_kill, &sum);
      if (st.ok() && opts.manifest) st = opts.manifest->add(f.name, sum.size, sum.crc);
      if (!st.ok()) {
        progress.done();
        // A partial file is harmless (never under its real name) but not left behind when
        // we can help it; the test hook keeps it, as a killed run would.
        if (!interrupt) (void)dst.fs->DeleteFile(dst.path(f.name) + kPartialSuffix, {}, nullptr);
        return st;
      }
      ++stats.files;
      stats.bytes += f.size;
    }
    ++done_files;
    done_bytes += f.size;
    progress.update(done_files, done_bytes, done_files == files.size());
  }
  progress.done();
  stats.seconds = progress.seconds();
  return stats;
}

std::string summary(const std::string& what, const CopyStats& s) {
  std::string line = fmt::format("{}: {} file(s), {} copied and verified in {:.2f} s ({:.1f} MB/s)", what, s.files,
                                 format_size(s.bytes), s.seconds, Progress::mb_per_s(s.bytes, s.seconds));
  if (s.skipped)
    line += fmt::format("; {} file(s), {} already verified by an earlier run, skipped", s.skipped,
                        format_size(s.skipped_bytes));
  return line;
}

void fail_hook_from_env(CopyOptions& opts) {
  const char* v = std::getenv("SLUICE_MIGRATE_FAIL_AFTER");
  if (v == nullptr || *v == '\0') return;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  if (end == v || n < 0) return;
  if (*end == '\0' || std::string_view(end) == ":kill") {
    opts.fail_after = n;
    opts.fail_by_kill = *end != '\0';
  }
}

}  // namespace sluice::migrate
