// Mounted's table of open files: the kernel owns their lifetime (open .. release), except
// when the loop ends with some still open.
#include "base/log.h"
#include "fuse/fuse_fs.h"

namespace sluice::fuse {

Handle* Mounted::add(std::unique_ptr<fs::File> file, bool writable) {
  auto h = std::make_unique<Handle>();
  h->file = std::move(file);
  h->writable = writable;
  std::lock_guard lock(mu_);
  open_.insert(h.get());
  return h.release();
}

Status Mounted::remove(Handle* h) {
  {
    std::lock_guard lock(mu_);
    open_.erase(h);
  }
  std::unique_ptr<Handle> owned(h);
  std::lock_guard lock(h->mu);
  return h->file->close();
}

size_t Mounted::close_all() {
  std::set<Handle*> left;
  {
    std::lock_guard lock(mu_);
    left.swap(open_);
  }
  for (Handle* h : left) {
    std::unique_ptr<Handle> owned(h);
    std::lock_guard lock(h->mu);
    if (Status st = h->file->close(); !st.ok()) log::warn("sluice mount: closing a file left open: {}", st.to_string());
  }
  return left.size();
}

}  // namespace sluice::fuse
