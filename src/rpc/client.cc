// The blocking client `sluice rpc` and the tests use.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <fmt/format.h>

#include "rpc/rpc.h"
#include "rpc/unix_socket.h"

namespace sluice::rpc {

Result<Json> call(const std::string& socket_path, std::string_view method, const Json& params, int timeout_ms) {
  auto fd = connect_unix(socket_path);
  if (!fd.ok()) return fd.status();
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{*fd};

  Json request{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}};
  if (!params.is_null()) request["params"] = params;
  const std::string wire = request.dump(-1, ' ', false, Json::error_handler_t::replace);
  for (size_t sent = 0; sent < wire.size();) {
    const ssize_t n = ::send(*fd, wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(errno, fmt::format("send to {}", socket_path));
    }
    sent += static_cast<size_t>(n);
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  FrameSplitter splitter(64u << 20);
  std::string frame;
  for (;;) {
    switch (splitter.next(frame)) {
      case FrameSplitter::Next::frame: {
        Json response = Json::parse(frame, nullptr, false);
        if (response.is_discarded() || !response.is_object())
          return Status{Errc::corrupt, "the server sent a response that is not a JSON object"};
        return response;
      }
      case FrameSplitter::Next::too_large:
      case FrameSplitter::Next::garbage:
        return Status{Errc::corrupt, "the server sent something that is not JSON"};
      case FrameSplitter::Next::need_more:
        break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status{Errc::aborted, fmt::format("no answer from {} within {} ms", socket_path, timeout_ms)};
    pollfd p{*fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) return errno_status(errno, "poll");
    if (p.revents == 0) continue;
    char buf[65536];
    const ssize_t n = ::recv(*fd, buf, sizeof(buf), 0);
    if (n < 0 && errno != EINTR && errno != EAGAIN) return errno_status(errno, fmt::format("receive from {}", socket_path));
    if (n == 0) return Status{Errc::aborted, fmt::format("{} closed the connection without an answer", socket_path)};
    if (n > 0) splitter.feed({buf, static_cast<size_t>(n)});
  }
}

}  // namespace sluice::rpc
