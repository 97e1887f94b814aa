// A reactor's virtqueue kicks as an IoChannel (kick_channel.h).
#include "target/vhost/kick_channel.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"
#include "target/vhost/vhost.h"
#include "thread/io_channel.h"

namespace sluice::vhost {

class KickChannel final : public thread::IoChannel {
 public:
  KickChannel(thread::IoDevice& device, int epfd) : IoChannel(device), epfd_(epfd) {}
  ~KickChannel() override { ::close(epfd_); }

  // The queues' pollers find the requests; a kick only wakes the reactor (finish_sleep).
  int poll() override { return 0; }
  bool waits_for_peers() const override { return !sources_.empty(); }
  uint64_t peer_spin_ns(uint64_t grace_ns) const override {
    uint64_t ns = 0;
    for (const KickSource* s : sources_) ns = std::max(ns, s->spin_ns());
    return std::min(ns, grace_ns);
  }
  int wake_fd() const override { return epfd_; }
  bool prepare_sleep() override {
    bool ready = false;
    // Every queue, even after one said it has work: kicks stay on for all of them, so that
    // whichever sleep comes next, none is left suppressed.
    for (KickSource* s : sources_) ready |= s->ready_after_enabling_kicks();
    return !ready;
  }
  void finish_sleep(bool woken) override {
    if (woken) drain_kicks();
  }

  Status add(KickSource* source) {
    epoll_event ev{};
    // Edge-triggered: each kick queues one event in the set, and taking the events is all a
    // wake needs; the kick eventfd's counter is never read (one syscall per wake, not two).
    ev.events = EPOLLIN | EPOLLET;
    ev.data.fd = source->kick_fd();
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, source->kick_fd(), &ev) != 0)
      return errno_status(errno, fmt::format("epoll_ctl add kick fd {}", source->kick_fd()));
    sources_.push_back(source);
    return Status::Ok();
  }
  void remove(KickSource* source) {
    epoll_event ev{};
    (void)epoll_ctl(epfd_, EPOLL_CTL_DEL, source->kick_fd(), &ev);
    sources_.erase(std::remove(sources_.begin(), sources_.end(), source), sources_.end());
  }

 private:
  // Takes the queued kicks, so that the set is quiet until the next one. One batch: a kick
  // left over only wakes the next sleep early.
  void drain_kicks() {
    epoll_event events[kMaxKicksPerDrain];
    (void)epoll_wait(epfd_, events, kMaxKicksPerDrain, 0);
  }

  static constexpr int kMaxKicksPerDrain = 64;
  const int epfd_;
  std::vector<KickSource*> sources_;
};

namespace {

class KickDevice final : public thread::IoDevice {
 public:
  Result<std::unique_ptr<thread::IoChannel>> create_channel() override {
    const int fd = epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) return errno_status(errno, "epoll_create1 for vhost kicks");
    return std::unique_ptr<thread::IoChannel>(new KickChannel(*this, fd));
  }
};

KickDevice& kick_device() {
  static KickDevice* d = new KickDevice();  // never destroyed: reactors may outlive statics
  return *d;
}

std::atomic<uint32_t> g_max_poll_spin_us{kDefaultMaxPollSpinUs};

}  // namespace

void set_max_poll_spin_us(uint32_t us) { g_max_poll_spin_us.store(us, std::memory_order_relaxed); }
uint32_t max_poll_spin_us() { return g_max_poll_spin_us.load(std::memory_order_relaxed); }

Result<KickChannel*> join_kick_channel(KickSource* source) {
  auto ch = thread::get_io_channel(kick_device());
  if (!ch.ok()) return ch.status();
  auto* channel = static_cast<KickChannel*>(ch.value());
  if (Status st = channel->add(source); !st.ok()) {
    if (Status put = thread::put_io_channel(channel); !put.ok()) log::error("vhost: kick channel: {}", put.to_string());
    return st;
  }
  return channel;
}

void leave_kick_channel(KickChannel* channel, KickSource* source) {
  channel->remove(source);
  if (Status st = thread::put_io_channel(channel); !st.ok()) log::error("vhost: kick channel: {}", st.to_string());
}

}  // namespace sluice::vhost
