#include "thread/io_channel.h"

#include <algorithm>
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

}  // namespace sluice::thread
