// Listen addresses: construction, their text form (for logs and saved configs) and their
// sockaddr form.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

#include <fmt/format.h>

#include "net/net.h"
#include "net/socket_address.h"

namespace sluice::net {

ListenAddress ListenAddress::tcp_address(std::string host, uint16_t port) {
  ListenAddress a;
  a.kind = Kind::tcp;
  a.host = std::move(host);
  a.port = port;
  return a;
}

ListenAddress ListenAddress::unix_socket(std::string path, uint32_t mode) {
  ListenAddress a;
  a.kind = Kind::unix_path;
  a.host.clear();
  a.path = std::move(path);
  a.mode = mode;
  return a;
}

std::string ListenAddress::to_string() const {
  if (kind == Kind::unix_path) return fmt::format("unix:{}", path);
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

namespace detail {

Result<SocketAddress> resolve(const ListenAddress& a) {
  SocketAddress out;
  if (a.kind == ListenAddress::Kind::unix_path) {
    auto* sun = reinterpret_cast<sockaddr_un*>(&out.storage);
    if (a.path.empty() || a.path.size() >= sizeof(sun->sun_path))
      return Status(Errc::invalid_argument, fmt::format("unix socket path '{}' is empty or longer than {} bytes",
                                                        a.path, sizeof(sun->sun_path) - 1));
    sun->sun_family = AF_UNIX;
    std::memcpy(sun->sun_path, a.path.data(), a.path.size());
    out.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + a.path.size() + 1);
    out.family = AF_UNIX;
    return out;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, a.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(a.port);
    out.len = sizeof(sockaddr_in);
    out.family = AF_INET;
    return out;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET6, a.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(a.port);
    out.len = sizeof(sockaddr_in6);
    out.family = AF_INET6;
    return out;
  }
  return Status(Errc::invalid_argument, fmt::format("'{}' is not an IPv4 or IPv6 address", a.host));
}

}  // namespace detail
}  // namespace sluice::net
