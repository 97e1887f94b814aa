// Status -> errno for FUSE replies. SluiceFS folds ENOTDIR, EISDIR and ENOTEMPTY into
// invalid_argument and busy with a message (fs.h, "Errors"), so the message decides those.
#include <cerrno>
#include <string_view>

#include "fuse/fuse_fs.h"

namespace sluice::fuse {
namespace {

bool says(const Status& st, std::string_view what) { return st.message().find(what) != std::string::npos; }

}  // namespace

int errno_for(const Status& st) {
  switch (st.code()) {
    case Errc::ok: return 0;
    case Errc::not_found: return ENOENT;
    case Errc::exists: return EEXIST;
    case Errc::no_space: return ENOSPC;
    case Errc::permission: return EACCES;
    case Errc::not_supported: return EOPNOTSUPP;
    case Errc::out_of_range: return EFBIG;
    case Errc::busy:
      return says(st, "not empty") ? ENOTEMPTY : EBUSY;
    case Errc::invalid_argument:
      if (says(st, "not a directory")) return ENOTDIR;
      if (says(st, "is a directory")) return EISDIR;
      if (says(st, "names are 1 to")) return ENAMETOOLONG;
      return EINVAL;
    default: return EIO;  // io_error, corrupt, aborted
  }
}

}  // namespace sluice::fuse
