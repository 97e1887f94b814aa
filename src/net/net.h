// The socket layer: non-blocking TCP (IPv4, IPv6) and Unix stream sockets owned by reactors.
//
// Every reactor that owns a socket holds one "net" IoChannel with an epoll descriptor. The
// reactor polls it each iteration (epoll_wait with timeout 0, a bounded batch of ready
// sockets per poll) and, because the channel reports work outstanding while it has sockets
// and offers the epoll descriptor as its wake fd, an idle reactor sleeps in ppoll until a
// socket turns ready: an idle connection costs no CPU. (epoll for now; an io_uring
// comparison is a later task.)
//
// Ownership and threads: a Watch, a Listener and a Connection belong to the reactor that
// created them. Only that reactor calls their methods, and their callbacks run there, from
// the channel's poll(). Nothing here takes a lock or allocates per message.
//
//   Listener: bind + listen (127.0.0.1 by default, or a Unix path: a stale socket file is
//   unlinked, its mode settable), accepts on one reactor and hands each new descriptor to a
//   reactor chosen round-robin, by message.
//   Connection: recv into the caller's buffer (the caller batches), queued sends written with
//   sendmsg over many iovecs, a bound on queued bytes the owner reads as back-pressure, and
//   close on the owning reactor only. Sends are batched per reactor iteration: send() only
//   queues, and the reactor's next poll of its net channel writes each connection's queue
//   with one sendmsg, so the replies of a batch of completions cost one syscall, not one
//   each.
//
// Errors: a peer that misbehaves or vanishes affects only its own connection: the
// connection reports it (on_closed) and the owner tears it down.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace sluice::net {

class Connection;

namespace detail {
// The net channel's side of batched sends (event_channel.cc): a connection with queued
// bytes is written at the start of the reactor's next net poll.
void flush_deferred(Connection* c);
}  // namespace detail

// ---- Addresses ----------------------------------------------------------------------------

struct ListenAddress {
  enum class Kind : uint8_t { tcp, unix_path };
  Kind kind = Kind::tcp;
  std::string host = "127.0.0.1";  // tcp: an IPv4 or IPv6 literal
  uint16_t port = 0;               // tcp: 0 picks an ephemeral port (see Listener::bound())
  std::string path;                // unix_path
  uint32_t mode = 0600;            // unix_path: the socket file's permissions

  static ListenAddress tcp_address(std::string host, uint16_t port);
  static ListenAddress unix_socket(std::string path, uint32_t mode = 0600);
  // "unix:/run/x.sock", "127.0.0.1:10809", "[::1]:10809"
  std::string to_string() const;
};

// A connected non-blocking stream socket to `address` (TCP with TCP_NODELAY, or a Unix
// socket), or an error naming the address once `timeout_ms` passes without an answer. The
// caller owns the descriptor. Blocks the calling thread: for the control path only.
Result<int> connect_stream(const ListenAddress& address, uint64_t timeout_ms);
// The same without waiting: a non-blocking socket whose connect may still be under way;
// connect_finished() then says Ok (connected), Errc::busy (not yet) or the error. The caller
// owns the descriptor and bounds the wait.
Result<int> start_connect(const ListenAddress& address);
Status connect_finished(int fd);

// ---- Readiness ----------------------------------------------------------------------------

// A descriptor registered with the calling reactor's epoll. The owner keeps the Watch alive
// until unwatch(). `fn` runs on that reactor with the epoll events (EPOLLIN, EPOLLOUT,
// EPOLLHUP, EPOLLERR).
struct Watch {
  int fd = -1;
  uint32_t events = 0;
  void (*fn)(void* arg, uint32_t events) = nullptr;
  void* arg = nullptr;
  bool registered = false;
  // False for a descriptor whose traffic is not worth the reactor's idle grace (a control
  // socket, its listener): it still wakes the reactor, but the reactor does not spin for it
  // (IoChannel::peer_spin_ns). Read when the watch is registered.
  bool spin_for_peer = true;
};

// Reactor threads only (Errc::invalid_argument elsewhere). Level-triggered.
Status watch(Watch* w, uint32_t events);
Status rewatch(Watch* w, uint32_t events);
// Never fails for a registered watch; a no-op otherwise. The reactor's net channel goes
// back when its last watch does.
void unwatch(Watch* w);

// ---- Listener -----------------------------------------------------------------------------

// Runs on the reactor that will own the connection, with a connected non-blocking
// descriptor it must adopt (close) and the peer's address for logs.
using AcceptFn = std::function<void(int fd, std::string peer)>;

class Listener {
 public:
  // Binds and listens now (any thread, so that errors reach the caller synchronously);
  // start() then watches it on the calling reactor.
  static Result<std::unique_ptr<Listener>> bind(const ListenAddress& address);
  ~Listener();  // closes the socket; a Unix socket file is removed
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // On the reactor that accepts. Connections go round-robin over reactors 0..count-1.
  // `spin_for_peer`: as Watch's, for the listening socket.
  Status start(AcceptFn on_accept, bool spin_for_peer = true);
  // On the accepting reactor: no further accepts.
  void stop();
  // The address actually bound (the ephemeral port filled in).
  const ListenAddress& bound() const { return bound_; }
  uint64_t accepted() const { return accepted_; }

 private:
  Listener(int fd, ListenAddress bound) : fd_(fd), bound_(std::move(bound)) {}
  static void on_ready(void* arg, uint32_t events);
  void accept_batch();

  int fd_;
  ListenAddress bound_;
  Watch watch_;
  AcceptFn on_accept_;
  uint32_t next_reactor_ = 0;
  uint64_t accepted_ = 0;
};

// ---- Connection ---------------------------------------------------------------------------

// One queued send: up to kSendIovs segments, embedded in the sender's own request so that
// queuing allocates nothing. done(arg, ok) runs once all bytes are written (ok) or the
// connection closed first (!ok); the item is the owner's again from then on.
struct SendItem {
  static constexpr int kSendIovs = 3;
  iovec iov[kSendIovs]{};
  int iovcnt = 0;
  void (*done)(void* arg, bool ok) = nullptr;
  void* arg = nullptr;
  // Connection's bookkeeping.
  size_t bytes = 0;
  size_t sent = 0;
  SendItem* next = nullptr;
};

class Connection {
 public:
  struct Handler {
    // Data (or the end of the stream) is ready: recv() until it returns 0, or pause reading;
    // epoll is level-triggered, so what is left is reported again.
    virtual void on_readable() = 0;
    // The peer went or the socket failed; the socket is already closed and every queued
    // send handed back. Runs once, possibly from inside recv() or send().
    virtual void on_closed() = 0;
    virtual ~Handler() = default;
  };

  Connection() = default;
  ~Connection();  // close()
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  // Adopts a connected non-blocking descriptor (closing it on failure) and watches it for
  // reading, on the calling reactor.
  Status open(int fd, Handler* handler);

  // Bytes read into buf, 0 when nothing is ready; Errc::aborted at the end of the stream or
  // on an error (on_closed has run by then).
  Result<size_t> recv(void* buf, size_t len);
  // Stops or resumes EPOLLIN (back-pressure): a paused socket costs no polls.
  void set_reading(bool on);
  bool reading() const { return reading_; }

  // Queues an item; the reactor's next poll of its net channel writes it, together with
  // whatever else was queued on this connection meanwhile (before the reactor can sleep).
  // A closed connection completes it at once with ok=false.
  void send(SendItem* item);
  size_t queued_bytes() const { return queued_bytes_; }

  // Closes the socket and hands every queued send back (ok=false), without on_closed.
  // Idempotent.
  void close();
  bool is_open() const { return fd_ >= 0; }

 private:
  friend void detail::flush_deferred(Connection* c);
  static void on_ready(void* arg, uint32_t events);
  void flush();
  void update_events();
  void fail(bool notify);

  int fd_ = -1;
  Handler* handler_ = nullptr;
  Watch watch_;
  bool reading_ = true;
  bool want_write_ = false;
  bool in_flush_ = false;  // a done callback that sends again only queues: the running flush writes it
  bool closed_notified_ = false;
  bool flush_deferred_ = false;  // on the net channel's list of connections to write
  SendItem* head_ = nullptr;
  SendItem* tail_ = nullptr;
  size_t queued_bytes_ = 0;
};

}  // namespace sluice::net
