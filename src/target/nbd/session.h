// One NBD connection (internal): its handshake, then its requests, on the reactor that owns
// its socket.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace sluice::nbd {

struct Export;

// Limits for new connections, set by start_server.
struct SessionLimits {
  uint32_t max_requests = 128;
  uint32_t max_payload = 32u << 20;
};
void set_session_limits(const SessionLimits& limits);
std::chrono::milliseconds stop_timeout();
void set_stop_timeout(std::chrono::milliseconds t);

// Adopts an accepted descriptor on the calling reactor and starts the handshake.
void start_session(int fd, const std::string& peer);
// On the calling reactor: closes its connections to export `id`, or all of them if 0.
void close_sessions(uint64_t export_id);
// Connections not yet freed, on every reactor.
uint64_t live_sessions();

}  // namespace sluice::nbd
