// The NBD target: serves bdevs to NBD clients (the Linux kernel's nbd driver, qemu, libnbd's
// nbdcopy/nbdinfo/nbdsh) over TCP or a Unix socket.
//
//   nbd::export_add("disk0", "malloc0", /*read_only=*/false);
//   nbd::start_server(net::ListenAddress::unix_socket("/run/sluice-nbd.sock"));
//   ...                                   // clients connect and do I/O on the reactors
//   nbd::stop_server();                   // closes the listener and every connection
//
// Threads: every function here is control path, called from a thread that is NOT a reactor
// (the JSON-RPC daemon's control thread, a test's main thread) while the App's reactors run.
// Those that change the server send messages to reactors and wait for them, bounded by
// ServerOptions::stop_timeout; from a reactor they would wait on themselves, so they refuse
// (Errc::invalid_argument). exports() and server_address() only read and never wait.
//
// The export table lives apart from the server: exports may be added before the server
// starts and outlive its stop, so a saved config is { server_address(), exports() }.
//
// Data path (docs/nbd.md): a connection belongs to the reactor its socket was handed to; its
// requests run there on that reactor's channel to the bdev, from a request pool allocated
// when the connection enters transmission (ServerOptions::max_requests), with DMA buffers
// aligned for the bdev. Nothing on it locks.
//
// Errors: a bad request (out of range, too large, unaligned, a write to a read-only export)
// gets an NBD error reply and the connection carries on; garbage in the handshake or a bad
// request magic closes that connection only. Removing an export, or hot-removing its bdev,
// disconnects its clients; their in-flight I/O completes before anything is freed.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "net/net.h"

namespace sluice::nbd {

inline constexpr uint16_t kDefaultPort = 10809;  // NBD's IANA port

struct ServerOptions {
  net::ListenAddress address = net::ListenAddress::tcp_address("127.0.0.1", kDefaultPort);
  uint32_t accept_reactor = 0;                   // the reactor that accepts (connections go round-robin)
  uint32_t max_requests = 128;                   // in flight per connection
  uint32_t max_payload = 32u << 20;              // largest READ or WRITE; beyond it EOVERFLOW
  std::chrono::milliseconds stop_timeout{5000};  // bounds every wait for the reactors
};

// Binds (errors such as an address in use come back here), then accepts on the chosen
// reactor. Errc::exists if a server already runs: one per process.
Status start_server(ServerOptions options);
Status start_server(const net::ListenAddress& address);
// Closes the listener and every connection, waits (bounded) until every connection is freed.
// A no-op when no server runs.
Status stop_server();
// The bound address (the ephemeral port filled in), or nullopt when no server runs.
std::optional<net::ListenAddress> server_address();
// The running server's options, its address as bound (for a saved config); nullopt when none.
std::optional<ServerOptions> server_options();

struct ExportInfo {
  std::string name;
  std::string bdev;
  bool read_only = false;
  uint32_t connections = 0;
};

// Opens `bdev_name` (a read-only export opens it read-only) and publishes it under `name`.
// Errc::exists for a name in use, Errc::not_found for no such bdev, Errc::invalid_argument
// for an empty or over-long name.
Status export_add(std::string_view name, std::string_view bdev_name, bool read_only);
// Unpublishes the export and disconnects its clients, waiting (bounded) for them to go.
Status export_remove(std::string_view name);
// The exports in the order they were added.
std::vector<ExportInfo> exports();

}  // namespace sluice::nbd
