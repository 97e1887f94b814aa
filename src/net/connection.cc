// Connection: a connected socket owned by one reactor, with a queue of sends written by
// sendmsg over many segments at once, once per reactor iteration (send_batch.h).
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "net/net.h"
#include "net/send_batch.h"

namespace sluice::net {
namespace {

// Segments gathered into one sendmsg (well under IOV_MAX).
constexpr int kMaxIovs = 64;
// Bounds the sendmsg calls per flush: a peer that takes bytes slowly but endlessly cannot
// hold the reactor; the rest waits for EPOLLOUT.
constexpr int kMaxSendsPerFlush = 16;

}  // namespace

Connection::~Connection() { close(); }

Status Connection::open(int fd, Handler* handler) {
  fd_ = fd;
  handler_ = handler;
  watch_.fd = fd;
  watch_.fn = &Connection::on_ready;
  watch_.arg = this;
  reading_ = true;
  Status st = watch(&watch_, EPOLLIN | EPOLLRDHUP);
  if (!st.ok()) {
    ::close(fd_);
    fd_ = -1;
  }
  return st;
}

void Connection::on_ready(void* arg, uint32_t events) {
  auto* c = static_cast<Connection*>(arg);
  // EPOLLHUP (both directions gone) is reported even while reading is paused: nothing more
  // can be sent, and a paused socket would otherwise report it on every poll.
  if ((events & EPOLLERR) || ((events & EPOLLHUP) && !c->reading_)) {
    c->fail(true);
    return;
  }
  if (events & EPOLLOUT) c->flush();
  if (c->fd_ < 0) return;
  // EPOLLIN with EPOLLRDHUP: the bytes before the hang-up are read first; recv then
  // reports the end of the stream.
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) c->handler_->on_readable();
}

Result<size_t> Connection::recv(void* buf, size_t len) {
  if (fd_ < 0) return Status(Errc::aborted, "connection closed");
  for (;;) {
    ssize_t n = ::recv(fd_, buf, len, 0);
    if (n > 0) return static_cast<size_t>(n);
    if (n == 0) {
      fail(true);
      return Status(Errc::aborted, "peer closed the connection");
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return size_t{0};
    fail(true);
    return Status(Errc::aborted, "connection reset");
  }
}

void Connection::set_reading(bool on) {
  if (reading_ == on) return;
  reading_ = on;
  update_events();
}

void Connection::update_events() {
  if (fd_ < 0) return;
  uint32_t ev = 0;
  if (reading_) ev |= EPOLLIN | EPOLLRDHUP;
  if (want_write_) ev |= EPOLLOUT;
  if (!rewatch(&watch_, ev).ok()) fail(true);
}

void Connection::send(SendItem* item) {
  if (fd_ < 0) {
    item->done(item->arg, false);
    return;
  }
  item->bytes = 0;
  for (int i = 0; i < item->iovcnt; ++i) item->bytes += item->iov[i].iov_len;
  item->sent = 0;
  item->next = nullptr;
  if (tail_)
    tail_->next = item;
  else
    head_ = item;
  tail_ = item;
  queued_bytes_ += item->bytes;
  // Waiting for EPOLLOUT (the socket is full), inside a flush (it writes this too), or
  // already on the channel's list: nothing to arrange.
  if (want_write_ || in_flush_ || flush_deferred_) return;
  flush_deferred_ = detail::defer_flush(this);
  if (!flush_deferred_) flush();
}

namespace detail {
void flush_deferred(Connection* c) {
  c->flush_deferred_ = false;
  c->flush();
}
}  // namespace detail

void Connection::flush() {
  struct Guard {
    bool& flag;
    explicit Guard(bool& f) : flag(f) { flag = true; }
    ~Guard() { flag = false; }
  } guard(in_flush_);
  for (int round = 0; round < kMaxSendsPerFlush && head_ != nullptr && fd_ >= 0; ++round) {
    iovec iov[kMaxIovs];
    int n = 0;
    for (SendItem* it = head_; it != nullptr && n + it->iovcnt <= kMaxIovs; it = it->next) {
      size_t skip = it == head_ ? it->sent : 0;
      for (int i = 0; i < it->iovcnt; ++i) {
        const iovec& v = it->iov[i];
        if (skip >= v.iov_len) {
          skip -= v.iov_len;
          continue;
        }
        iov[n++] = {static_cast<char*>(v.iov_base) + skip, v.iov_len - skip};
        skip = 0;
      }
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    ssize_t w = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      fail(true);
      return;
    }
    auto left = static_cast<size_t>(w);
    queued_bytes_ -= left;
    while (head_ != nullptr && left > 0) {
      SendItem* it = head_;
      const size_t take = std::min(left, it->bytes - it->sent);
      it->sent += take;
      left -= take;
      if (it->sent < it->bytes) break;
      head_ = it->next;
      if (head_ == nullptr) tail_ = nullptr;
      it->done(it->arg, true);  // may queue more sends (appended, written in a later round)
      if (fd_ < 0) return;
    }
  }
  const bool want = head_ != nullptr;
  if (want != want_write_) {
    want_write_ = want;
    update_events();
  }
}

void Connection::fail(bool notify) {
  if (fd_ < 0) return;
  unwatch(&watch_);
  if (flush_deferred_) {
    detail::cancel_flush(this);
    flush_deferred_ = false;
  }
  ::close(fd_);
  fd_ = -1;
  want_write_ = false;
  // Every queued item goes back to its owner, unsent.
  while (head_ != nullptr) {
    SendItem* it = head_;
    head_ = it->next;
    if (head_ == nullptr) tail_ = nullptr;
    it->done(it->arg, false);
  }
  queued_bytes_ = 0;
  if (notify && !closed_notified_) {
    closed_notified_ = true;
    handler_->on_closed();
  }
}

void Connection::close() {
  closed_notified_ = true;  // the owner asked: no callback
  fail(false);
}

}  // namespace sluice::net
