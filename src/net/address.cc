// Listen addresses: construction and their text form (for logs and saved configs).
#include <fmt/format.h>

#include "net/net.h"

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

}  // namespace sluice::net
