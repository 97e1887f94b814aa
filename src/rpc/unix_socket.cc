#include "rpc/unix_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace sluice::rpc {
namespace {

sockaddr_un address_of(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

}  // namespace

Status check_socket_path(const std::string& path) {
  if (path.empty()) return {Errc::invalid_argument, "the RPC socket path is empty"};
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return {Errc::invalid_argument,
            fmt::format("socket path {} is longer than {} bytes", path, sizeof(sockaddr_un::sun_path) - 1)};
  return {};
}

Result<int> connect_unix(const std::string& path) {
  SLUICE_RETURN_IF_ERROR(check_socket_path(path));
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status(errno, "socket");
  const sockaddr_un addr = address_of(path);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_status(err, fmt::format("connect {}", path));
  }
  return fd;
}

Result<int> listen_unix(const std::string& path, int backlog) {
  SLUICE_RETURN_IF_ERROR(check_socket_path(path));
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status{Errc::exists, fmt::format("{} exists and is not a socket", path)};
    auto probe = connect_unix(path);
    if (probe.ok()) {
      ::close(*probe);
      return Status{Errc::busy, fmt::format("another server is listening on {}", path)};
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_status(errno, fmt::format("unlink {}", path));
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status(errno, "socket");
  const sockaddr_un addr = address_of(path);
  // Nobody can connect between bind and listen, so the mode is set before anyone can use it.
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    return errno_status(err, fmt::format("bind {}", path));
  }
  if (::chmod(path.c_str(), 0600) != 0 || ::listen(fd, backlog) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return errno_status(err, fmt::format("listen on {}", path));
  }
  return fd;
}

}  // namespace sluice::rpc
