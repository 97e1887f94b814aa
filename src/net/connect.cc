// Outgoing connections: what an initiator (the NVMe/TCP host) or a test client needs, a
// connected non-blocking stream socket, with a bound on how long the handshake may take.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/clock.h"
#include "net/net.h"
#include "net/socket_address.h"

namespace sluice::net {

Result<int> connect_stream(const ListenAddress& address, uint64_t timeout_ms) {
  auto sa = detail::resolve(address);
  if (!sa.ok()) return sa.status();
  const int fd = ::socket(sa->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status(Errc::io_error, fmt::format("socket: {}", std::strerror(errno)));
  auto fail = [&](const std::string& what) {
    ::close(fd);
    return Status(Errc::io_error, fmt::format("connecting to {}: {}", address.to_string(), what));
  };
  if (sa->family != AF_UNIX) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // commands are small and latency-bound
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa->storage), sa->len) != 0) {
    if (errno != EINPROGRESS) return fail(std::strerror(errno));
    const uint64_t deadline = clock::now_ns() + timeout_ms * 1000000;
    for (;;) {
      const uint64_t now = clock::now_ns();
      if (now >= deadline) return fail(fmt::format("no answer within {} ms", timeout_ms));
      pollfd p{fd, POLLOUT, 0};
      const int n = ::poll(&p, 1, static_cast<int>((deadline - now + 999999) / 1000000));
      if (n < 0 && errno != EINTR) return fail(std::strerror(errno));
      if (n > 0) break;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return fail(std::strerror(err));
  }
  return fd;
}

}  // namespace sluice::net
