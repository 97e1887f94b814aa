// The Unix-socket plumbing the server and the client share.
#pragma once

#include <string>

#include "base/status.h"

namespace sluice::rpc {

// A sockaddr_un for `path`, or an error when the path does not fit (108 bytes).
Status check_socket_path(const std::string& path);
// A connected, blocking stream socket to `path` (close it with ::close).
Result<int> connect_unix(const std::string& path);
// A listening, non-blocking socket bound to `path` with mode 0600. A stale socket file (a
// dead server's: connecting is refused) is replaced; a live server's, or a file that is
// not a socket, is an error that says so.
Result<int> listen_unix(const std::string& path, int backlog);

}  // namespace sluice::rpc
