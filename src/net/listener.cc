// Listener: bind and listen, accept on one reactor, hand each connection to a reactor
// round-robin by message.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "net/net.h"
#include "net/socket_address.h"
#include "thread/thread.h"

namespace sluice::net {
namespace {

// Bounds the accepts per readiness event, so that a connection storm cannot hold the
// accepting reactor's loop (the rest arrive on the next poll: epoll is level-triggered).
constexpr int kAcceptBatch = 32;

std::string peer_name(const sockaddr_storage& s) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (s.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&s);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return fmt::format("{}:{}", text, ntohs(v4->sin_port));
  }
  if (s.ss_family == AF_INET6) {
    auto* v6 = reinterpret_cast<const sockaddr_in6*>(&s);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
    return fmt::format("[{}]:{}", text, ntohs(v6->sin6_port));
  }
  return "unix";
}

// A socket file left by a process that died: replace it. Anything else at the path is the
// user's and stays.
Status remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return Status::Ok();
  if (!S_ISSOCK(st.st_mode))
    return Status(Errc::exists, fmt::format("{} exists and is not a socket; not replacing it", path));
  if (unlink(path.c_str()) != 0) return errno_status(errno, fmt::format("unlink stale socket {}", path));
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Listener>> Listener::bind(const ListenAddress& address) {
  auto sa = detail::resolve(address);
  if (!sa.ok()) return sa.status();
  const bool is_unix = address.kind == ListenAddress::Kind::unix_path;
  if (is_unix) SLUICE_RETURN_IF_ERROR(remove_stale_socket(address.path));
  int fd = socket(sa->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status(errno, "socket");
  auto fail = [&](std::string_view what) {
    Status st = errno_status(errno, fmt::format("{} {}", what, address.to_string()));
    ::close(fd);
    return st;
  };
  if (!is_unix) {
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa->storage), sa->len) != 0) return fail("bind");
  if (is_unix && chmod(address.path.c_str(), address.mode) != 0) {
    Status st = fail("chmod");
    unlink(address.path.c_str());
    return st;
  }
  if (listen(fd, SOMAXCONN) != 0) {
    Status st = fail("listen");
    if (is_unix) unlink(address.path.c_str());
    return st;
  }
  ListenAddress bound = address;
  if (!is_unix) {
    sockaddr_storage s{};
    socklen_t len = sizeof(s);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len) == 0)
      bound.port = ntohs(s.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&s)->sin_port
                                                : reinterpret_cast<sockaddr_in6*>(&s)->sin6_port);
  }
  return std::unique_ptr<Listener>(new Listener(fd, std::move(bound)));
}

Listener::~Listener() {
  if (watch_.registered) log::error("net: listener on {} destroyed while watched", bound_.to_string());
  ::close(fd_);
  if (bound_.kind == ListenAddress::Kind::unix_path) unlink(bound_.path.c_str());
}

Status Listener::start(AcceptFn on_accept, bool spin_for_peer) {
  on_accept_ = std::move(on_accept);
  watch_.fd = fd_;
  watch_.spin_for_peer = spin_for_peer;
  watch_.fn = &Listener::on_ready;
  watch_.arg = this;
  return watch(&watch_, EPOLLIN);
}

void Listener::stop() { unwatch(&watch_); }

void Listener::on_ready(void* arg, uint32_t) { static_cast<Listener*>(arg)->accept_batch(); }

void Listener::accept_batch() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    int fd = accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      // EAGAIN: drained. EMFILE and friends: try again on the next poll rather than spin here.
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        log::warn("net: accept on {}: {}", bound_.to_string(), std::strerror(errno));
      return;
    }
    ++accepted_;
    if (peer.ss_family != AF_UNIX) {
      int one = 1;
      (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    const uint32_t n = thread::reactor_count();
    const uint32_t target = n == 0 ? 0 : next_reactor_++ % n;
    // One allocation per connection: the control path. The handler is copied so that the
    // connection never refers to this listener, which may go first.
    Status st = thread::send_message(target, [fd, name = peer_name(peer), fn = on_accept_]() { fn(fd, name); });
    if (!st.ok()) {
      log::warn("net: dropping a connection on {}: reactor {}: {}", bound_.to_string(), target, st.to_string());
      ::close(fd);
    }
  }
}

}  // namespace sluice::net
