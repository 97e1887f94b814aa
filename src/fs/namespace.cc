// Namespace operations. Each runs under md_mu_ and applies its blobstore records without any
// allocation in between, so a commit (which a thick resize or another thread's sync_md may
// run at any time) never splits one operation's records (docs/format/sluicefs.md).
#include <algorithm>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/log.h"
#include "fs/file.h"
#include "fs/fs_core.h"
#include "fs/path.h"

namespace sluice::fs {
namespace {

Status with_path(const Status& st, std::string_view what, std::string_view path) {
  return Status(st.code(), fmt::format("{} {}: {}", what, path, st.message()));
}

class PathLock final : public FileLock {
 public:
  PathLock(FsCore& fs, std::string path) : fs_(fs), path_(std::move(path)) {}
  ~PathLock() override { fs_.unlock_path(path_); }

 private:
  FsCore& fs_;
  std::string path_;
};

}  // namespace

std::string FsCore::path_locked(const Inode& ino) {
  std::vector<std::string> names;
  const Inode* cur = &ino;
  for (int depth = 0; cur && cur->id != root_ && depth < 4096; ++depth) {
    if (cur->orphan) return "(unlinked)";
    names.push_back(cur->name);
    auto it = inodes_.find(cur->parent);
    cur = it == inodes_.end() ? nullptr : it->second.get();
  }
  std::reverse(names.begin(), names.end());
  return join_path(names);
}

std::string FsCore::path_of(const Inode& ino) {
  std::lock_guard lock(md_mu_);
  return path_locked(ino);
}

Result<std::shared_ptr<Inode>> FsCore::lookup_locked(std::string_view path) {
  auto names = split_path(path);
  if (!names.ok()) return names.status();
  std::shared_ptr<Inode> cur = inodes_.at(root_);
  for (size_t i = 0; i < names->size(); ++i) {
    if (!cur->is_dir())
      return Status(Errc::not_a_directory, fmt::format("{}: {} is not a directory", path,
                                                       join_path({names->begin(), names->begin() + i})));
    auto it = cur->children.find((*names)[i]);
    if (it == cur->children.end()) return Status(Errc::not_found, fmt::format("{}: no such file or directory", path));
    cur = inodes_.at(it->second);
  }
  return cur;
}

Result<std::pair<std::shared_ptr<Inode>, std::string>> FsCore::parent_locked(std::string_view path) {
  auto names = split_path(path);
  if (!names.ok()) return names.status();
  if (names->empty()) return Status(Errc::invalid_argument, fmt::format("{}: the root has no name", path));
  std::string last = names->back();
  names->pop_back();
  auto dir = lookup_locked(join_path(*names));
  if (!dir.ok()) {
    if (dir.status().code() == Errc::not_found)
      return Status(Errc::not_found, fmt::format("{}: parent directory {} does not exist", path, join_path(*names)));
    return dir.status();
  }
  if (!(*dir)->is_dir())
    return Status(Errc::not_a_directory, fmt::format("{}: {} is not a directory", path, join_path(*names)));
  return std::make_pair(*dir, last);
}

Result<std::shared_ptr<Inode>> FsCore::create_locked(Inode& dir, const std::string& name, Kind kind) {
  if (read_only()) return Status(Errc::permission, "the file system is mounted read-only");
  blob::CreateOptions co;
  co.thin = kind == Kind::dir;
  auto id = bs_->create(co);
  if (!id.ok()) return id.status();
  auto ino = std::make_shared<Inode>(*id, kind);
  ino->parent = dir.id;
  ino->name = name;
  ino->persisted.mtime_ns = clock::wall_ns();
  ino->mtime_ns = ino->persisted.mtime_ns;
  Status st = bs_->set_xattr(*id, kXattrEntry, encode_entry({kind, dir.id, name}), true);
  if (st.ok()) st = bs_->set_xattr(*id, kXattrState, encode_state(ino->persisted), true);
  ++md_dirty_;
  if (!st.ok()) {
    (void)bs_->remove(*id);
    return st;
  }
  dir.children[name] = *id;
  inodes_[*id] = ino;
  return ino;
}

Status FsCore::set_entry_locked(Inode& ino, uint64_t parent, const std::string& name) {
  ++md_dirty_;
  return bs_->set_xattr(ino.id, kXattrEntry, encode_entry({ino.kind, parent, name}), true);
}

Status FsCore::drop_locked(const std::shared_ptr<Inode>& ino) {
  if (auto it = inodes_.find(ino->parent); it != inodes_.end()) {
    auto& ch = it->second->children;
    if (auto c = ch.find(ino->name); c != ch.end() && c->second == ino->id) ch.erase(c);
  }
  ++md_dirty_;
  reopening_ = false;  // a database deletes only once its open is done (allocate_locked)
  if (ino->opens > 0) {
    // Unlinked while open: readable until the last close; collected at mount after a crash.
    ino->orphan = true;
    ino->parent = 0;
    ino->name.clear();
    return set_entry_locked(*ino, 0, "");
  }
  inodes_.erase(ino->id);
  return bs_->remove(ino->id);
}

void FsCore::release(const std::shared_ptr<Inode>& ino) {
  std::lock_guard lock(md_mu_);
  --handles_;
  if (--ino->opens > 0) return;
  if (ino->blob) {
    Status st = bs_->close(std::move(ino->blob));
    if (!st.ok()) log::warn("sluicefs: close of blob {}: {}", ino->id, st.to_string());
    ino->blob.reset();
  }
  if (ino->orphan) {
    inodes_.erase(ino->id);
    ++md_dirty_;
    if (!read_only()) {
      Status st = bs_->remove(ino->id);
      if (st.ok()) st = publish_locked();
      if (!st.ok()) log::warn("sluicefs: removing unlinked file (blob {}): {}", ino->id, st.to_string());
    }
  }
}

Status FsCore::add_handle_locked(Inode& ino) {
  if (!ino.blob) {
    auto b = bs_->open(ino.id);
    if (!b.ok()) return b.status();
    ino.blob = *b;
  }
  ++ino.opens;
  ++handles_;
  return Status::Ok();
}

Result<std::unique_ptr<File>> FsCore::open(std::string_view path, const OpenOptions& opts) {
  if ((opts.create || opts.truncate) && !opts.write)
    return Status(Errc::invalid_argument, fmt::format("open {}: create and truncate need write", path));
  if (opts.write && read_only())
    return Status(Errc::permission, fmt::format("open {}: the file system is mounted read-only", path));
  std::shared_ptr<Inode> ino;
  {
    std::lock_guard lock(md_mu_);
    if (unmounted_) return Status(Errc::aborted, "the file system is unmounted");
    auto found = lookup_locked(path);
    if (found.ok()) {
      if (opts.create && opts.exclusive) return Status(Errc::exists, fmt::format("open {}: it exists", path));
      ino = *found;
      if (ino->is_dir()) return Status(Errc::is_a_directory, fmt::format("open {}: it is a directory", path));
    } else if (found.status().code() == Errc::not_found && opts.create) {
      auto parent = parent_locked(path);
      if (!parent.ok()) return parent.status();
      auto created = create_locked(*parent->first, parent->second, Kind::file);
      if (!created.ok()) return with_path(created.status(), "create", path);
      ino = *created;
      if (Status st = publish_locked(); !st.ok()) return with_path(st, "create", path);
    } else {
      return found.status();
    }
    if (Status st = add_handle_locked(*ino); !st.ok()) return with_path(st, "open", path);
  }
  auto h = std::make_unique<FileHandle>(*this, ino, opts.write, opts.cache_writes);
  if (opts.write) {
    Status st = h->begin_write();
    if (st.ok() && opts.truncate) st = h->truncate(0);
    if (!st.ok()) return with_path(st, "open", path);
  }
  return std::unique_ptr<File>(std::move(h));
}

Status FsCore::mkdir_locked(std::string_view path, bool exists_ok) {
  auto parent = parent_locked(path);
  if (!parent.ok()) return parent.status();
  auto& [dir, name] = *parent;
  if (auto it = dir->children.find(name); it != dir->children.end()) {
    if (exists_ok && inodes_.at(it->second)->is_dir()) return Status::Ok();
    return Status(Errc::exists, fmt::format("mkdir {}: it exists", path));
  }
  auto created = create_locked(*dir, name, Kind::dir);
  return created.ok() ? Status::Ok() : with_path(created.status(), "mkdir", path);
}

Status FsCore::mkdir(std::string_view path) {
  std::lock_guard lock(md_mu_);
  if (read_only()) return Status(Errc::permission, "the file system is mounted read-only");
  SLUICE_RETURN_IF_ERROR(mkdir_locked(path, false));
  return publish_locked();
}

Status FsCore::mkdirs(std::string_view path) {
  auto names = split_path(path);
  if (!names.ok()) return names.status();
  std::lock_guard lock(md_mu_);
  if (read_only()) return Status(Errc::permission, "the file system is mounted read-only");
  std::vector<std::string> prefix;
  for (auto& n : *names) {
    prefix.push_back(n);
    SLUICE_RETURN_IF_ERROR(mkdir_locked(join_path(prefix), true));
  }
  return publish_locked();
}

Status FsCore::rmdir(std::string_view path) {
  std::lock_guard lock(md_mu_);
  if (read_only()) return Status(Errc::permission, "the file system is mounted read-only");
  auto ino = lookup_locked(path);
  if (!ino.ok()) return ino.status();
  if (!(*ino)->is_dir()) return Status(Errc::not_a_directory, fmt::format("rmdir {}: not a directory", path));
  if ((*ino)->id == root_) return Status(Errc::invalid_argument, "rmdir /: the root cannot be removed");
  if (!(*ino)->children.empty()) return Status(Errc::not_empty, fmt::format("rmdir {}: directory not empty", path));
  SLUICE_RETURN_IF_ERROR(drop_locked(*ino));
  return publish_locked();
}

Status FsCore::unlink(std::string_view path) {
  std::lock_guard lock(md_mu_);
  if (read_only()) return Status(Errc::permission, "the file system is mounted read-only");
  auto ino = lookup_locked(path);
  if (!ino.ok()) return ino.status();
  if ((*ino)->is_dir()) return Status(Errc::is_a_directory, fmt::format("unlink {}: it is a directory", path));
  SLUICE_RETURN_IF_ERROR(drop_locked(*ino));
  return publish_locked();
}

Status FsCore::rename(std::string_view from, std::string_view to) {
  std::lock_guard lock(md_mu_);
  if (read_only()) return Status(Errc::permission, "the file system is mounted read-only");
  auto src = lookup_locked(from);
  if (!src.ok()) return src.status();
  auto parent = parent_locked(to);
  if (!parent.ok()) return parent.status();
  auto& [dir, name] = *parent;
  std::shared_ptr<Inode> s = *src;
  if (s->id == root_) return Status(Errc::invalid_argument, "rename /: the root cannot be moved");
  if (s->is_dir()) {
    for (Inode* d = dir.get(); d; d = d->id == root_ ? nullptr : inodes_.at(d->parent).get())
      if (d->id == s->id)
        return Status(Errc::invalid_argument, fmt::format("rename {} {}: a directory cannot move into itself", from, to));
  }
  std::shared_ptr<Inode> target;
  if (auto it = dir->children.find(name); it != dir->children.end()) {
    target = inodes_.at(it->second);
    if (target->id == s->id) return Status::Ok();
    if (target->is_dir() && !s->is_dir())
      return Status(Errc::is_a_directory, fmt::format("rename {} {}: the target is a directory", from, to));
    if (!target->is_dir() && s->is_dir())
      return Status(Errc::not_a_directory, fmt::format("rename {} {}: the target is not a directory", from, to));
    if (target->is_dir() && !target->children.empty())
      return Status(Errc::not_empty, fmt::format("rename {} {}: the target directory is not empty", from, to));
  }
  // The records of this rename: the source's new entry, then the target's removal (or its
  // orphan entry). No allocation in between, so they commit together.
  SLUICE_RETURN_IF_ERROR(set_entry_locked(*s, dir->id, name));
  if (target) SLUICE_RETURN_IF_ERROR(drop_locked(target));
  if (auto it = inodes_.find(s->parent); it != inodes_.end()) it->second->children.erase(s->name);
  s->parent = dir->id;
  s->name = name;
  dir->children[name] = s->id;
  return publish_locked();
}

Result<std::vector<std::string>> FsCore::list(std::string_view path) {
  std::lock_guard lock(md_mu_);
  auto ino = lookup_locked(path);
  if (!ino.ok()) return ino.status();
  if (!(*ino)->is_dir()) return Status(Errc::not_a_directory, fmt::format("list {}: not a directory", path));
  std::vector<std::string> names;
  names.reserve((*ino)->children.size());
  for (auto& [n, id] : (*ino)->children) names.push_back(n);
  std::sort(names.begin(), names.end());
  return names;
}

Result<FileStat> FsCore::stat(std::string_view path) {
  std::shared_ptr<Inode> ino;
  {
    std::lock_guard lock(md_mu_);
    auto found = lookup_locked(path);
    if (!found.ok()) return found.status();
    ino = *found;
  }
  FileStat st;
  st.directory = ino->is_dir();
  st.id = ino->id;
  st.allocated = ino->allocated.load();
  std::lock_guard lock(ino->mu);
  st.size = ino->len;
  st.mtime_ns = ino->mtime_ns;
  return st;
}

Status FsCore::truncate(std::string_view path, uint64_t size) {
  auto f = open(path, {.write = true});
  if (!f.ok()) return f.status();
  Status st = (*f)->truncate(size);
  Status cl = (*f)->close();
  return st.ok() ? cl : st;
}

Status FsCore::sync_dir(std::string_view dir) {
  std::lock_guard lock(md_mu_);
  auto ino = lookup_locked(dir);
  if (!ino.ok()) return ino.status();
  if (!(*ino)->is_dir()) return Status(Errc::not_a_directory, fmt::format("sync_dir {}: not a directory", dir));
  return commit_locked();
}

Result<std::unique_ptr<FileLock>> FsCore::lock(std::string_view path) {
  auto names = split_path(path);
  if (!names.ok()) return names.status();
  std::string norm = join_path(*names);
  {
    std::lock_guard lock(locks_mu_);
    if (locks_.contains(norm)) return Status(Errc::busy, fmt::format("lock {}: it is held", norm));
    locks_.insert(norm);
  }
  if (!read_only()) {
    // Like RocksDB's LockFile on POSIX: the lock file exists while it is held.
    auto f = open(norm, {.write = true, .create = true});
    Status st = f.ok() ? (*f)->close() : f.status();
    if (!st.ok()) {
      unlock_path(norm);
      return st;
    }
  }
  return std::unique_ptr<FileLock>(new PathLock(*this, norm));
}

void FsCore::unlock_path(const std::string& path) {
  std::lock_guard lock(locks_mu_);
  locks_.erase(path);
}

FsStat FsCore::statfs() {
  FsStat s;
  auto info = bs_->store_info();
  s.total_bytes = info.total_clusters * info.cluster_size;
  s.free_bytes = info.free_clusters > reserve_ ? (info.free_clusters - reserve_) * info.cluster_size : 0;
  s.reserved_bytes = std::min(info.free_clusters, reserve_) * info.cluster_size;
  s.block_size = block_;
  s.cluster_size = cluster_;
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  s.direct_reads = get(counters_.direct_reads);
  s.bounced_reads = get(counters_.bounced_reads);
  s.readahead_fills = get(counters_.readahead_fills);
  s.cache_hits = get(counters_.cache_hits);
  s.cache_misses = get(counters_.cache_misses);
  s.syncs = get(counters_.syncs);
  s.two_phase_syncs = get(counters_.two_phase_syncs);
  s.commits = get(counters_.commits);
  std::lock_guard lock(md_mu_);
  for (auto& [id, ino] : inodes_) {
    if (ino->orphan) continue;
    if (ino->is_dir()) {
      ++s.directories;
    } else {
      ++s.files;
    }
  }
  return s;
}

}  // namespace sluice::fs
