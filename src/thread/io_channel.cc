#include "thread/io_channel.h"

#include <algorithm>
#include <cerrno>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"

namespace sluice::thread {
namespace {

// A thread owns few channels (one per device it touches), so a flat vector beats a map.
struct ThreadChannels {
  std::vector<IoChannel*> channels;
  ~ThreadChannels() {
    if (!channels.empty()) log::warn("thread exiting with {} io channel(s) still held", channels.size());
  }
};
thread_local ThreadChannels t_channels;

// Channels armed by arm_thread_channels(), with the index of their descriptor in the caller's
// array (-1: none). Reused across sleeps: arming allocates only the first time.
struct Armed {
  IoChannel* channel;
  int fd_index;
};
thread_local std::vector<Armed> t_armed;

}  // namespace

IoChannel::IoChannel(IoDevice& device) : device_(device), owner_(std::this_thread::get_id()) {
  device_.channels_.fetch_add(1, std::memory_order_acq_rel);
}

IoChannel::~IoChannel() { device_.channels_.fetch_sub(1, std::memory_order_acq_rel); }

Result<IoChannel*> get_io_channel(IoDevice& device) {
  for (IoChannel* ch : t_channels.channels) {
    if (&ch->device() == &device) {
      ++ch->refs_;
      return ch;
    }
  }
  auto created = device.create_channel();
  if (!created.ok()) return created.status();
  IoChannel* ch = created.value().release();
  if (ch == nullptr) return Status(Errc::io_error, "IoDevice::create_channel() succeeded without a channel");
  ch->refs_ = 1;
  t_channels.channels.push_back(ch);
  return ch;
}

Status put_io_channel(IoChannel* channel) {
  if (channel == nullptr) return Status(Errc::invalid_argument, "put_io_channel(nullptr)");
  if (channel->owner() != std::this_thread::get_id())
    return Status(Errc::invalid_argument, "an io channel must be released on the thread that owns it");
  // A channel built by hand rather than by get_io_channel() holds no reference to drop.
  if (channel->refs_ == 0) return Status(Errc::invalid_argument, "put_io_channel() without a matching get");
  if (--channel->refs_ > 0) return Status::Ok();
  auto& v = t_channels.channels;
  v.erase(std::remove(v.begin(), v.end(), channel), v.end());
  delete channel;
  return Status::Ok();
}

int poll_thread_channels() {
  int events = 0;
  // Index loop: a callback may get or put channels while we iterate.
  for (size_t i = 0; i < t_channels.channels.size(); ++i) events += t_channels.channels[i]->poll();
  return events;
}

bool thread_channels_outstanding() {
  for (IoChannel* ch : t_channels.channels)
    if (ch->has_outstanding()) return true;
  return false;
}

size_t thread_channel_count() { return t_channels.channels.size(); }

ChannelsIdle thread_channels_idle(uint64_t grace_ns) {
  ChannelsIdle out;
  bool peers = false;
  for (IoChannel* ch : t_channels.channels) {
    if (ch->has_outstanding()) {
      if (ch->wake_fd() < 0) return {ChannelsWait::must_poll, grace_ns};
      out.wait = ChannelsWait::can_sleep;
    }
    if (!ch->waits_for_peers() || out.spin_ns == grace_ns) continue;
    peers = true;
    out.spin_ns = std::max(out.spin_ns, std::min(ch->peer_spin_ns(grace_ns), grace_ns));
  }
  if (!peers) out.spin_ns = grace_ns;
  return out;
}

bool arm_thread_channels(std::vector<pollfd>& fds) {
  t_armed.clear();
  for (IoChannel* ch : t_channels.channels) {
    if (!ch->has_outstanding() && !ch->waits_for_peers()) continue;
    const int fd = ch->wake_fd();
    if (fd < 0 || !ch->prepare_sleep()) {
      for (const Armed& a : t_armed) a.channel->finish_sleep(false);
      t_armed.clear();
      return false;
    }
    t_armed.push_back({ch, static_cast<int>(fds.size())});
    fds.push_back({fd, POLLIN, 0});
  }
  return true;
}

void disarm_thread_channels(const std::vector<pollfd>& fds) {
  for (const Armed& a : t_armed) {
    const bool woken = a.fd_index >= 0 && static_cast<size_t>(a.fd_index) < fds.size() &&
                       (fds[static_cast<size_t>(a.fd_index)].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
    a.channel->finish_sleep(woken);
  }
  t_armed.clear();
}

bool wait_in_kernel_on_thread_channels(uint64_t timeout_ns) {
  IoChannel* only = nullptr;
  for (IoChannel* ch : t_channels.channels) {
    if (!ch->has_outstanding() && !ch->waits_for_peers()) continue;
    if (only != nullptr) return false;
    only = ch;
  }
  return only != nullptr && only->wait_in_kernel(timeout_ns);
}

bool sleep_on_thread_channels(uint64_t timeout_ns) {
  return wait_in_kernel_on_thread_channels(timeout_ns) || sleep_armed_on_thread_channels(timeout_ns);
}

bool sleep_armed_on_thread_channels(uint64_t timeout_ns) {
  thread_local std::vector<pollfd> fds;
  fds.clear();
  if (!arm_thread_channels(fds)) return false;
  if (fds.empty()) {  // nothing in flight: nothing would ever wake us
    disarm_thread_channels(fds);
    return false;
  }
  timespec ts{static_cast<time_t>(timeout_ns / 1000000000u), static_cast<long>(timeout_ns % 1000000000u)};
  int rc = ppoll(fds.data(), fds.size(), &ts, nullptr);
  if (rc <= 0)
    for (pollfd& p : fds) p.revents = 0;  // timeout or EINTR: nobody was woken
  disarm_thread_channels(fds);
  return true;
}

}  // namespace sluice::thread
