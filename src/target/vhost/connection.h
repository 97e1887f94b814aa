// One vhost-user connection on a reactor: its socket watched for readability, whole messages
// handed to its Session, replies written back. Any error (a malformed message, a refused
// request, the peer gone) closes the connection with a logged reason; the session's rings
// are stopped (their requests in flight completed) before the device and the connection go.
// Only the reactor that started it touches it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "base/unique_fd.h"
#include "target/vhost/device.h"

namespace sluice::vhost {

class Connection;

// Adopts connected socket `fd` on the calling reactor and serves `device` over it. on_gone
// runs on this reactor once the connection and its device have been freed. Returns a
// handle for close_connection(), or an error (the descriptor is closed then, and on_gone
// never runs).
Result<Connection*> start_connection(UniqueFd fd, std::unique_ptr<Device> device, std::string name,
                                     std::function<void()> on_gone);
// Closes it as if the peer had gone; on the connection's reactor. Idempotent until on_gone.
void close_connection(Connection* c, const char* why);

}  // namespace sluice::vhost
