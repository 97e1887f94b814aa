// The RPC server: one thread, poll() over the listening socket, the connections and a stop
// eventfd. Requests are few and handlers may block, so a plain poll loop is the right
// tool here; the data path never passes through it.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"
#include "rpc/rpc.h"
#include "rpc/unix_socket.h"

namespace sluice::rpc {
namespace {

// A connection whose responses pile up unread (a client that sends and never reads) stops
// being read until they drain: back-pressure instead of unbounded memory.
constexpr size_t kMaxPendingOutput = 16u << 20;

std::string to_wire(const Json& response) {
  return response.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

struct Server::Impl {
  struct Connection {
    explicit Connection(int fd_, size_t max_frame) : fd(fd_), splitter(max_frame) {}
    int fd;
    FrameSplitter splitter;
    std::string out;
    bool closing = false;  // answer what is queued, then close: the stream cannot be resynchronized
  };

  const Registry& registry;
  ServerOptions options;
  int listen_fd = -1;
  int stop_fd = -1;
  std::thread thread;
  std::vector<Connection> connections;

  void run();
  void accept_all();
  // False when the connection is finished and must be closed.
  bool read_from(Connection& c);
  bool write_to(Connection& c);
  void handle_frames(Connection& c);
};

void Server::Impl::accept_all() {
  for (;;) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection that died in the backlog
    if (connections.size() >= options.max_connections) {
      log::warn("rpc: {} connections already open: refusing another", connections.size());
      ::close(fd);
      continue;
    }
    connections.emplace_back(fd, options.max_request_bytes);
  }
}

void Server::Impl::handle_frames(Connection& c) {
  std::string frame;
  while (!c.closing) {
    switch (c.splitter.next(frame)) {
      case FrameSplitter::Next::frame: {
        Json response = registry.dispatch_text(frame);
        if (!response.is_null()) c.out += to_wire(response);
        break;
      }
      case FrameSplitter::Next::need_more:
        return;
      case FrameSplitter::Next::too_large:
        c.out += to_wire({{"jsonrpc", "2.0"}, {"id", nullptr},
                          {"error", {{"code", kInvalidRequest},
                                     {"message", fmt::format("request larger than {} bytes", options.max_request_bytes)}}}});
        c.closing = true;
        return;
      case FrameSplitter::Next::garbage:
        c.out += to_wire({{"jsonrpc", "2.0"}, {"id", nullptr},
                          {"error", {{"code", kParseError}, {"message", "Parse error: expected a JSON object"}}}});
        c.closing = true;
        return;
    }
  }
}

bool Server::Impl::read_from(Connection& c) {
  char buf[65536];
  const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
  if (n == 0) {  // the client is done sending: answer what it sent, then close
    c.closing = true;
    return true;
  }
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  c.splitter.feed({buf, static_cast<size_t>(n)});
  handle_frames(c);
  return true;
}

bool Server::Impl::write_to(Connection& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    c.out.erase(0, static_cast<size_t>(n));
  }
  return !c.closing;
}

void Server::Impl::run() {
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({stop_fd, POLLIN, 0});
    fds.push_back({listen_fd, POLLIN, 0});
    for (const Connection& c : connections) {
      short events = 0;
      if (!c.closing && c.out.size() < kMaxPendingOutput) events |= POLLIN;
      if (!c.out.empty()) events |= POLLOUT;
      fds.push_back({c.fd, events, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
      log::error("rpc: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[0].revents != 0) return;
    // Connections first: accept_all() may append to `connections`, which fds does not cover.
    size_t kept = 0;
    for (size_t i = 0; i < connections.size(); ++i) {
      Connection& c = connections[i];
      const short rev = fds[i + 2].revents;
      bool alive = true;
      if (rev & (POLLIN | POLLHUP | POLLERR)) alive = read_from(c);
      if (alive && (rev & POLLERR)) alive = false;
      if (alive && !c.out.empty()) alive = write_to(c);
      else if (alive && c.closing) alive = false;
      if (!alive) {
        ::close(c.fd);
        continue;
      }
      if (kept != i) connections[kept] = std::move(c);
      ++kept;
    }
    connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(kept), connections.end());
    if (fds[1].revents & POLLIN) accept_all();
  }
}

Server::Server(const Registry& registry, ServerOptions options) : impl_(new Impl{registry, std::move(options)}) {}

Server::~Server() { stop(); }

Status Server::start() {
  if (impl_->thread.joinable()) return {Errc::busy, "the RPC server is running already"};
  auto fd = listen_unix(impl_->options.socket_path, 128);
  if (!fd.ok()) return fd.status();
  impl_->listen_fd = *fd;
  impl_->stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl_->stop_fd < 0) {
    const int err = errno;
    ::close(impl_->listen_fd);
    ::unlink(impl_->options.socket_path.c_str());
    return errno_status(err, "eventfd");
  }
  impl_->thread = std::thread([this] { impl_->run(); });
  return {};
}

void Server::stop() {
  if (!impl_->thread.joinable()) return;
  const uint64_t one = 1;
  if (::write(impl_->stop_fd, &one, sizeof(one)) < 0) log::error("rpc: cannot signal the server to stop");
  impl_->thread.join();
  for (Impl::Connection& c : impl_->connections) ::close(c.fd);
  impl_->connections.clear();
  ::close(impl_->listen_fd);
  ::close(impl_->stop_fd);
  ::unlink(impl_->options.socket_path.c_str());
  impl_->listen_fd = impl_->stop_fd = -1;
}

}  // namespace sluice::rpc
