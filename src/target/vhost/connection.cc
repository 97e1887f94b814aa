// A vhost-user connection on a reactor (connection.h).
#include "target/vhost/connection.h"

#include <sys/epoll.h>

#include <utility>

#include "base/log.h"
#include "net/net.h"
#include "target/vhost/message.h"
#include "target/vhost/session.h"
#include "thread/thread.h"

namespace sluice::vhost {

// Bounds one readiness event's work; what is left is reported again (level-triggered).
constexpr int kMessagesPerEvent = 16;

class Connection final : public Session::Transport {
 public:
  Connection(UniqueFd fd, std::unique_ptr<Device> device, std::string name, std::function<void()> on_gone)
      : fd_(std::move(fd)), device_(std::move(device)), session_(*device_, *this, std::move(name)),
        on_gone_(std::move(on_gone)) {}

  Status open() {
    watch_.fd = fd_.get();
    watch_.arg = this;
    watch_.fn = [](void* arg, uint32_t) { static_cast<Connection*>(arg)->on_readable(); };
    // Set-up messages, not requests: the queues' kicks say what their reactor spins for.
    watch_.spin_for_peer = false;
    return net::watch(&watch_, EPOLLIN | EPOLLRDHUP);
  }

  // `error`: the front end misbehaved (a warning, shown by default); else it went away or
  // was told to (a notice).
  void close(const std::string& why, bool error = false) {
    if (closing_) return;
    closing_ = true;
    log::emit(error ? log::Level::warn : log::Level::notice, "vhost {}: connection closed: {}", session_.name(), why);
    net::unwatch(&watch_);
    fd_.reset();
    // The rings stop first (requests in flight complete into guest memory the session
    // still maps), then everything goes from a message, off this call stack.
    session_.stop_all([this] {
      thread::destroy_later(
          [](void* arg) {
            auto* c = static_cast<Connection*>(arg);
            auto gone = std::move(c->on_gone_);
            delete c;  // the session and the device with it
            if (gone) gone();
          },
          this);
    });
  }

  Status send(Message& reply, int fd) override {
    if (!fd_.valid()) return Status(Errc::aborted, "connection closed");
    return write_message(fd_.get(), reply, fd);
  }

  void resume(Status st) override {
    if (!st.ok()) {
      close(st.to_string(), true);
      return;
    }
    if (closing_) return;
    waiting_ = false;
    (void)net::rewatch(&watch_, EPOLLIN | EPOLLRDHUP);
  }

 private:
  void on_readable() {
    for (int i = 0; i < kMessagesPerEvent && !waiting_ && !closing_; ++i) {
      auto got = reader_.read(fd_.get(), &msg_);
      if (!got.ok()) {
        const bool gone = got.status().code() == Errc::aborted;
        close(gone ? "the front end went away" : got.status().to_string(), !gone);
        return;
      }
      if (!*got) return;
      auto r = session_.handle(msg_);
      if (!r.ok()) {
        close(r.status().to_string(), true);
        return;
      }
      if (*r == Session::Outcome::wait) {
        // Nothing more is read until the session resumes.
        waiting_ = true;
        (void)net::rewatch(&watch_, 0);
      }
    }
  }

  UniqueFd fd_;
  std::unique_ptr<Device> device_;
  Session session_;
  std::function<void()> on_gone_;
  net::Watch watch_;
  MessageReader reader_;
  Message msg_;
  bool waiting_ = false;
  bool closing_ = false;
};

Result<Connection*> start_connection(UniqueFd fd, std::unique_ptr<Device> device, std::string name,
                                     std::function<void()> on_gone) {
  auto* c = new Connection(std::move(fd), std::move(device), std::move(name), std::move(on_gone));
  if (Status st = c->open(); !st.ok()) {
    delete c;  // nothing started yet; on_gone is for connections that were served
    return st;
  }
  return c;
}

void close_connection(Connection* c, const char* why) { c->close(why); }

}  // namespace sluice::vhost
