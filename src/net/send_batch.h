// Batched sends (private to src/net): Connection::send() queues and asks the reactor's net
// channel to write the connection at its next poll; each connection is on that list at most
// once, however many replies it queued meanwhile.
#pragma once

namespace sluice::net {
class Connection;
}

namespace sluice::net::detail {

// On the connection's reactor. False when the calling thread has no net channel (nothing
// would ever poll the list): the caller writes now instead.
bool defer_flush(Connection* c);
// A connection that closes leaves the list (it may be freed before the next poll).
void cancel_flush(Connection* c);

}  // namespace sluice::net::detail
