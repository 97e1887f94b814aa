#include "base/status.h"

#include <cstring>

#include <fmt/format.h>

namespace sluice {

std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::out_of_range: return "out_of_range";
    case Errc::not_supported: return "not_supported";
    case Errc::not_found: return "not_found";
    case Errc::exists: return "exists";
    case Errc::busy: return "busy";
    case Errc::io_error: return "io_error";
    case Errc::no_space: return "no_space";
    case Errc::corrupt: return "corrupt";
    case Errc::aborted: return "aborted";
    case Errc::permission: return "permission";
    case Errc::not_a_directory: return "not_a_directory";
    case Errc::is_a_directory: return "is_a_directory";
    case Errc::not_empty: return "not_empty";
    case Errc::name_too_long: return "name_too_long";
    case Errc::wrong_format: return "wrong_format";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  if (message_.empty()) return std::string(errc_name(code_));
  return fmt::format("{}: {}", errc_name(code_), message_);
}

Status errno_status(int err, std::string_view what) {
  Errc code = Errc::io_error;
  switch (err) {
    case ENOENT: case ENODEV: case ENXIO: code = Errc::not_found; break;
    case EACCES: case EPERM: case EROFS: code = Errc::permission; break;
    case EINVAL: case EBADF: case ENOTBLK: code = Errc::invalid_argument; break;
    case EEXIST: code = Errc::exists; break;
    case EBUSY: case EAGAIN: code = Errc::busy; break;
    case ENOSPC: code = Errc::no_space; break;
    case EOPNOTSUPP: code = Errc::not_supported; break;
    case ENOTDIR: code = Errc::not_a_directory; break;
    case EISDIR: code = Errc::is_a_directory; break;
    case ENOTEMPTY: code = Errc::not_empty; break;
    case ENAMETOOLONG: code = Errc::name_too_long; break;
    default: break;
  }
  return Status(code, fmt::format("{}: {}", what, std::strerror(err)));
}

}  // namespace sluice
