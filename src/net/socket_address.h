// The sockaddr form of a ListenAddress, for the files of src/net that bind or connect.
#pragma once

#include <sys/socket.h>

#include "base/status.h"
#include "net/net.h"

namespace sluice::net::detail {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = AF_UNSPEC;
};

// An IPv4 or IPv6 literal with its port, or a Unix socket path.
Result<SocketAddress> resolve(const ListenAddress& a);

}  // namespace sluice::net::detail
