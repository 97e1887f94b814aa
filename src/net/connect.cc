// Outgoing connections: what an initiator (the NVMe/TCP host) or a test client needs, a
// connected non-blocking stream socket, either waited for (connect_stream) or started and
// checked from a poller (start_connect, connect_finished) so that no reactor blocks on it.
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

Result<int> start_connect(const ListenAddress& address) {
  auto sa = detail::resolve(address);
  if (!sa.ok()) return sa.status();
  const int fd = ::socket(sa->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status(Errc::io_error, fmt::format("socket: {}", std::strerror(errno)));
  if (sa->family != AF_UNIX) {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // commands are small and latency-bound
  }
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa->storage), sa->len) != 0 && errno != EINPROGRESS) {
    const int err = errno;
    ::close(fd);
    return Status(Errc::io_error, fmt::format("connecting to {}: {}", address.to_string(), std::strerror(err)));
  }
  return fd;
}

Status connect_finished(int fd) {
  pollfd p{fd, POLLOUT, 0};
  const int n = ::poll(&p, 1, 0);
  if (n == 0 || (n < 0 && errno == EINTR)) return Status(Errc::busy, "connecting");
  if (n < 0) return Status(Errc::io_error, std::strerror(errno));
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return Status(Errc::io_error, std::strerror(err));
  return Status::Ok();
}

Result<int> connect_stream(const ListenAddress& address, uint64_t timeout_ms) {
  auto fd = start_connect(address);
  if (!fd.ok()) return fd.status();
  const uint64_t deadline = clock::now_ns() + timeout_ms * 1000000;
  for (;;) {
    Status st = connect_finished(*fd);
    if (st.ok()) return fd;
    if (st.code() != Errc::busy || clock::now_ns() >= deadline) {
      ::close(*fd);
      return Status(Errc::io_error, fmt::format("connecting to {}: {}", address.to_string(),
                                                st.code() == Errc::busy ? fmt::format("no answer within {} ms", timeout_ms)
                                                                         : st.message()));
    }
    pollfd p{*fd, POLLOUT, 0};
    (void)::poll(&p, 1, 1);
  }
}

}  // namespace sluice::net
