// The per-reactor "net" IoChannel: one epoll descriptor for every socket the reactor owns.
//
// Polled every loop iteration like any channel (epoll_wait with timeout 0). While it holds
// sockets it reports work outstanding and offers the epoll descriptor as its wake fd, which
// (level-triggered) turns readable whenever a socket is ready: so the reactor's idle sleep
// (reactor.cc, sleep_until_event) covers the sockets and an idle connection costs nothing.
//
// It also writes the connections that queued sends since its last poll (send_batch.h),
// before reading new requests: the replies of a batch of completions leave in one sendmsg
// per connection, one reactor iteration after they were queued. A reactor with such writes
// pending does not sleep.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"
#include "net/net.h"
#include "net/send_batch.h"
#include "thread/io_channel.h"
#include "thread/thread.h"

namespace sluice::net {
namespace {

// Bounds how long sockets can hold off the rest of the reactor's loop in one poll.
constexpr int kMaxEventsPerPoll = 64;

class NetChannel;

class NetDevice final : public thread::IoDevice {
 public:
  Result<std::unique_ptr<thread::IoChannel>> create_channel() override;
};

NetDevice& device() {
  static NetDevice* d = new NetDevice();  // never destroyed: reactors may outlive statics
  return *d;
}

class NetChannel final : public thread::IoChannel {
 public:
  NetChannel(NetDevice& d, int epfd) : IoChannel(d), epfd_(epfd) {}
  ~NetChannel() override { ::close(epfd_); }

  int poll() override {
    const int written = write_deferred();
    if (watches_ == 0) return written;
    // Quiet watches alone (control sockets) are not worth a syscall on every pass: a sleeping
    // reactor is woken for them (the epoll set is the wake descriptor) and looks at once, a
    // busy one every kQuietPollInterval passes.
    if (spinning_watches_ == 0 && !woken_ && ++quiet_passes_ < kQuietPollInterval) return written;
    quiet_passes_ = 0;
    woken_ = false;
    int n = epoll_wait(epfd_, events_, kMaxEventsPerPoll, 0);
    if (n <= 0) return written;
    for (int i = 0; i < n; ++i) {
      auto* w = static_cast<Watch*>(events_[i].data.ptr);
      // Null: a handler earlier in this batch unwatched it (and may have freed it).
      if (w == nullptr) continue;
      w->fn(w->arg, events_[i].events);
    }
    return written + n;
  }
  // Queued sends are work in flight; watched sockets wait for peers.
  bool has_outstanding() const override { return !deferred_.empty(); }
  bool waits_for_peers() const override { return watches_ > 0; }
  uint64_t peer_spin_ns(uint64_t grace_ns) const override { return spinning_watches_ > 0 ? grace_ns : 0; }
  int wake_fd() const override { return epfd_; }
  // Level-triggered: a ready socket wakes ppoll at once. Queued sends are written first.
  bool prepare_sleep() override { return deferred_.empty(); }
  void finish_sleep(bool woken) override { woken_ |= woken; }

  void defer(Connection* c) { deferred_.push_back(c); }
  void cancel(const Connection* c) {
    for (Connection*& d : deferred_)
      if (d == c) d = nullptr;
    for (Connection*& d : writing_)
      if (d == c) d = nullptr;
  }

  int epfd() const { return epfd_; }
  uint32_t watches_ = 0;
  uint32_t spinning_watches_ = 0;  // those with Watch::spin_for_peer
  bool release_pending = false;

  // A watch removed while a batch runs: its later events in the batch must not run.
  void forget(const Watch* w) {
    for (epoll_event& e : events_)
      if (e.data.ptr == w) e.data.ptr = nullptr;
  }

 private:
  // Writes every connection that queued sends; their done callbacks may queue more (on the
  // list again, for the next poll) or close connections (cancel() clears their entries).
  int write_deferred() {
    if (deferred_.empty()) return 0;
    writing_.swap(deferred_);
    int n = 0;
    for (size_t i = 0; i < writing_.size(); ++i) {
      Connection* c = writing_[i];
      if (c == nullptr) continue;
      detail::flush_deferred(c);
      ++n;
    }
    writing_.clear();
    return n;
  }

  static constexpr uint32_t kQuietPollInterval = 64;
  int epfd_;
  bool woken_ = false;  // the epoll set woke the last sleep: look at it on the next pass
  uint32_t quiet_passes_ = 0;
  epoll_event events_[kMaxEventsPerPoll]{};
  // Both keep their capacity: after the first few polls, deferring allocates nothing.
  std::vector<Connection*> deferred_;
  std::vector<Connection*> writing_;
};

Result<std::unique_ptr<thread::IoChannel>> NetDevice::create_channel() {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return errno_status(errno, "epoll_create1");
  return std::unique_ptr<thread::IoChannel>(new NetChannel(*this, fd));
}

// The calling reactor's channel; its reference is held while it has watches.
thread_local NetChannel* t_channel = nullptr;

Result<NetChannel*> channel() {
  if (t_channel != nullptr) return t_channel;
  if (thread::current_reactor() == nullptr)
    return Status(Errc::invalid_argument, "sockets belong to reactors: call from a reactor thread");
  auto ch = thread::get_io_channel(device());
  if (!ch.ok()) return ch.status();
  t_channel = static_cast<NetChannel*>(ch.value());
  return t_channel;
}

// The channel cannot go inside its own poll() (a handler unwatching the last socket), so
// its release is a message to the same reactor, which runs outside any poll.
void release_if_unused(void*) {
  NetChannel* ch = t_channel;
  if (ch == nullptr) return;
  ch->release_pending = false;
  if (ch->watches_ > 0) return;
  t_channel = nullptr;
  Status st = thread::put_io_channel(ch);
  if (!st.ok()) log::error("net: releasing the reactor's channel: {}", st.to_string());
}

}  // namespace

namespace detail {
bool defer_flush(Connection* c) {
  if (t_channel == nullptr) return false;
  t_channel->defer(c);
  return true;
}

void cancel_flush(Connection* c) {
  if (t_channel != nullptr) t_channel->cancel(c);
}
}  // namespace detail

Status watch(Watch* w, uint32_t events) {
  if (w->registered) return Status(Errc::exists, "descriptor already watched");
  auto ch = channel();
  if (!ch.ok()) return ch.status();
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = w;
  if (epoll_ctl((*ch)->epfd(), EPOLL_CTL_ADD, w->fd, &ev) != 0)
    return errno_status(errno, fmt::format("epoll_ctl add fd {}", w->fd));
  w->events = events;
  w->registered = true;
  ++(*ch)->watches_;
  if (w->spin_for_peer) ++(*ch)->spinning_watches_;
  return Status::Ok();
}

Status rewatch(Watch* w, uint32_t events) {
  if (!w->registered || t_channel == nullptr) return Status(Errc::invalid_argument, "descriptor not watched");
  if (w->events == events) return Status::Ok();
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = w;
  if (epoll_ctl(t_channel->epfd(), EPOLL_CTL_MOD, w->fd, &ev) != 0)
    return errno_status(errno, fmt::format("epoll_ctl mod fd {}", w->fd));
  w->events = events;
  return Status::Ok();
}

void unwatch(Watch* w) {
  if (!w->registered || t_channel == nullptr) return;
  NetChannel* ch = t_channel;
  epoll_event ev{};
  (void)epoll_ctl(ch->epfd(), EPOLL_CTL_DEL, w->fd, &ev);
  w->registered = false;
  if (w->spin_for_peer) --ch->spinning_watches_;
  ch->forget(w);
  if (--ch->watches_ == 0 && !ch->release_pending) {
    const thread::Reactor* r = thread::current_reactor();
    ch->release_pending = true;
    Status st = thread::send_message(thread::reactor_id(r), release_if_unused, nullptr);
    // A full ring: the channel stays until the next last unwatch (or leaks at exit, logged).
    if (!st.ok()) ch->release_pending = false;
  }
}

}  // namespace sluice::net
