// fsck for the namespace.
#include <fmt/format.h>

#include "fs/fs_core.h"
#include "blob/probe.h"
#include "fs/path.h"

namespace sluice::fs {

Result<CheckReport> FsCore::check() {
  CheckReport r;
  std::lock_guard lock(md_mu_);
  if (unmounted_) return Status(Errc::aborted, "the file system is unmounted");
  for (auto& p : bs_->check()) r.problems.push_back("blobstore: " + p);
  std::unordered_map<uint64_t, int> named;  // blob -> entries naming it
  for (uint64_t id : bs_->list()) {
    auto info = bs_->info(id);
    if (!info.ok()) {
      r.problems.push_back(info.status().message());
      continue;
    }
    auto& x = info->internal_xattrs;
    auto e = x.find(std::string(kXattrEntry));
    auto s = x.find(std::string(kXattrState));
    if (e == x.end() || s == x.end()) {
      r.problems.push_back(fmt::format("blob {} has no SluiceFS entry or state (a leaked blob)", id));
      continue;
    }
    auto entry = decode_entry(e->second);
    auto state = decode_state(s->second);
    if (!entry.ok() || !state.ok()) {
      r.problems.push_back(fmt::format("blob {}: malformed attributes", id));
      continue;
    }
    if (id == root_) {
      if (entry->kind != Kind::dir) r.problems.push_back("the root is not a directory");
      ++r.directories;
      continue;
    }
    if (entry->parent == 0) {
      ++r.orphans;  // unlinked while open: collected at its last close or the next mount
      continue;
    }
    Status ns = check_name(entry->name);
    if (!ns.ok()) r.problems.push_back(fmt::format("blob {}: {}", id, ns.message()));
    auto parent = inodes_.find(entry->parent);
    if (parent == inodes_.end() || !parent->second->is_dir()) {
      r.problems.push_back(fmt::format("blob {} ('{}') names parent {} which is not a directory", id, entry->name, entry->parent));
    } else {
      auto c = parent->second->children.find(entry->name);
      if (c == parent->second->children.end() || c->second != id)
        r.problems.push_back(fmt::format("blob {} ('{}') is not what its directory lists under that name", id, entry->name));
    }
    ++named[id];
    if (entry->kind == Kind::dir) {
      ++r.directories;
      if (info->size_clusters != 0) r.problems.push_back(fmt::format("directory blob {} owns clusters", id));
    } else {
      ++r.files;
      if (state->size > info->size_clusters * cluster_)
        r.problems.push_back(fmt::format("file {} (blob {}) is {} bytes but owns only {}", entry->name, id, state->size,
                                         info->size_clusters * cluster_));
    }
  }
  // Blobs removed under the blobstore's tools (`sluice blob rm --force`): what they held is
  // gone, and a directory no longer lists it, so only the note says it existed.
  if (auto note = bs_->get_xattr(root_, blob::kXattrForcedRemovals, true); note.ok() && !note->empty())
    r.problems.push_back(fmt::format("blob(s) {} removed with `sluice blob rm --force` behind SluiceFS's back: the "
                                     "files or directories they held are lost",
                                     *note));
  // Every listed child is a live blob.
  for (auto& [id, ino] : inodes_) {
    for (auto& [name, child] : ino->children) {
      if (!inodes_.contains(child))
        r.problems.push_back(fmt::format("directory blob {} lists '{}' -> blob {} which does not exist", id, name, child));
    }
  }
  return r;
}

}  // namespace sluice::fs
