// Status -> errno for FUSE replies.
#include <cerrno>

#include "fuse/fuse_fs.h"

namespace sluice::fuse {

int errno_for(const Status& st) {
  switch (st.code()) {
    case Errc::ok: return 0;
    case Errc::not_found: return ENOENT;
    case Errc::exists: return EEXIST;
    case Errc::no_space: return ENOSPC;
    case Errc::permission: return EACCES;
    case Errc::not_supported: return EOPNOTSUPP;
    case Errc::out_of_range: return EFBIG;
    case Errc::busy: return EBUSY;
    case Errc::not_a_directory: return ENOTDIR;
    case Errc::is_a_directory: return EISDIR;
    case Errc::not_empty: return ENOTEMPTY;
    case Errc::name_too_long: return ENAMETOOLONG;
    case Errc::invalid_argument: return EINVAL;
    default: return EIO;  // io_error, corrupt, aborted, wrong_format
  }
}

}  // namespace sluice::fuse
