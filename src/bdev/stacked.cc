#include "bdev/stacked.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "bdev/channel.h"

namespace sluice::bdev {

// ---- StackedBdev ------------------------------------------------------------------------

Result<StackedBdev::Base> StackedBdev::open_base(std::string_view name, std::string_view base_name) {
  if (name == base_name)
    return Status(Errc::invalid_argument, fmt::format("bdev {} cannot be stacked on itself", name));
  auto linked = std::make_shared<std::atomic<bool>>(true);
  OpenOptions opts;
  opts.write = true;
  opts.claim = Claim::exclusive;
  opts.on_remove = [linked, upper = std::string(name)] {
    // The base went away: take the stacked device out too, so its users are told.
    if (linked->exchange(false)) (void)unregister(upper);
  };
  auto desc = bdev::open(base_name, opts);
  if (!desc.ok())
    return Status(desc.status().code(),
                  fmt::format("{}: cannot claim base bdev {}: {}", name, base_name, desc.status().message()));
  Base base;
  base.desc = std::move(desc.value());
  base.linked = std::move(linked);
  return base;
}

Result<StackedBdev::Base> StackedBdev::create_base(const SpecArgs& args) {
  std::string base_name = args.name + "_base";
  auto created = bdev::create(args.target, base_name);
  if (!created.ok())
    return Status(created.status().code(), fmt::format("{}: base device '{}': {}", args.scheme, args.target,
                                                       created.status().message()));
  auto base = open_base(args.name, base_name);
  if (!base.ok()) {
    (void)unregister(base_name);
    return base.status();
  }
  base->owned = true;
  return base;
}

namespace {

Geometry stacked_geometry(const BdevDesc& base, uint32_t extra_supported) {
  Geometry g = base.geometry();
  g.supported |= extra_supported;
  return g;
}

}  // namespace

StackedBdev::StackedBdev(std::string name, std::string scheme, Base base, uint32_t extra_supported)
    : Bdev(std::move(name), stacked_geometry(*base.desc, extra_supported)),
      base_(std::move(base)),
      base_name_(base_.desc->name()),
      scheme_(std::move(scheme)) {}

StackedBdev::~StackedBdev() {
  base_.linked->store(false);
  base_.desc.reset();  // releases the claim
  drop_owned_base();   // a device that never made it into the registry still cleans up
}

std::string StackedBdev::spec() const { return fmt::format("{}:{}", scheme_, base_.desc->bdev().spec()); }

void StackedBdev::on_unregistered() {
  base_.linked->store(false);
  drop_owned_base();
}

void StackedBdev::drop_owned_base() {
  if (base_.owned && !owned_base_dropped_.exchange(true)) (void)unregister(base_name_);
}

Result<BdevChannel*> StackedBdev::get_base_channel() {
  std::lock_guard lock(base_channels_mu_);
  return base_.desc->get_channel();
}

void StackedBdev::put_base_channel(BdevChannel* ch) {
  std::lock_guard lock(base_channels_mu_);
  Status st = base_.desc->put_channel(ch);
  if (!st.ok()) log::error("bdev {}: releasing the base channel failed: {}", name(), st.to_string());
}

// ---- StackedQueue -----------------------------------------------------------------------

StackedQueue::~StackedQueue() {
  if (!retry_.empty() || !failed_.empty())
    log::error("bdev {}: channel destroyed with base requests still queued", owner_.name());
  owner_.put_base_channel(base_ch_);
}

void StackedQueue::on_base_done(void* arg, Errc status) {
  auto* op = static_cast<BaseOp*>(arg);
  op->done(op, status);
}

Status StackedQueue::issue(BaseOp* op) {
  BdevDesc& d = base();
  switch (op->type) {
    case IoType::read:
      return d.readv(base_ch_, op->iov, op->iovcnt, op->offset_blocks, op->num_blocks, on_base_done, op);
    case IoType::write:
      return d.writev(base_ch_, op->iov, op->iovcnt, op->offset_blocks, op->num_blocks, on_base_done, op);
    case IoType::flush:
      return d.flush(base_ch_, on_base_done, op);
    case IoType::unmap:
      return d.unmap(base_ch_, op->offset_blocks, op->num_blocks, on_base_done, op);
    case IoType::write_zeroes:
      return d.write_zeroes(base_ch_, op->offset_blocks, op->num_blocks, on_base_done, op);
    case IoType::reset:
      return d.reset(base_ch_, on_base_done, op);
  }
  return Status(Errc::invalid_argument, "unknown request type");
}

void StackedQueue::send(BaseOp* op) {
  op->queue = this;
  op->status = Errc::ok;
  if (!retry_.empty()) {  // keep the order of requests the base could not take yet
    retry_.push_back(op);
    return;
  }
  Status st = issue(op);
  if (st.ok()) return;
  if (st.code() == Errc::busy) {
    retry_.push_back(op);
  } else {
    op->status = st.code();
    failed_.push_back(op);
  }
}

void StackedQueue::forward(BdevIo* io, BaseOp* op, BaseOp::Done done) {
  op->type = io->type;
  op->iov = io->iovs;
  op->iovcnt = io->iovcnt;
  op->offset_blocks = io->offset_blocks;
  op->num_blocks = io->num_blocks;
  op->done = done;
  send(op);
}

int StackedQueue::poll() {
  int events = bdev::poll(base_ch_);
  while (!retry_.empty()) {
    BaseOp* op = retry_.front();
    Status st = issue(op);
    if (st.code() == Errc::busy) break;
    retry_.pop_front();
    ++events;
    if (!st.ok()) {
      op->status = st.code();
      failed_.push_back(op);
    }
  }
  auto failed = failed_.take_all();
  while (BaseOp* op = failed.pop_front()) {
    ++events;
    op->done(op, op->status);
  }
  events += on_poll();
  return events;
}

// ---- iovec helpers ----------------------------------------------------------------------

namespace {

// Calls fn(segment_pointer, bytes, position_in_range) for each piece of [offset, offset+len).
template <typename Fn>
void for_each_piece(const iovec* iov, int iovcnt, size_t offset, size_t len, Fn&& fn) {
  size_t done = 0;
  for (int i = 0; i < iovcnt && done < len; ++i) {
    size_t seg = iov[i].iov_len;
    if (offset >= seg) {
      offset -= seg;
      continue;
    }
    size_t take = std::min(seg - offset, len - done);
    fn(static_cast<char*>(iov[i].iov_base) + offset, take, done);
    done += take;
    offset = 0;
  }
}

}  // namespace

void iov_copy_from(const iovec* iov, int iovcnt, size_t offset, void* dst, size_t len) {
  for_each_piece(iov, iovcnt, offset, len,
                 [&](char* p, size_t n, size_t at) { std::memcpy(static_cast<char*>(dst) + at, p, n); });
}

void iov_copy_to(const iovec* iov, int iovcnt, size_t offset, const void* src, size_t len) {
  for_each_piece(iov, iovcnt, offset, len,
                 [&](char* p, size_t n, size_t at) { std::memcpy(p, static_cast<const char*>(src) + at, n); });
}

void iov_zero(const iovec* iov, int iovcnt, size_t offset, size_t len) {
  for_each_piece(iov, iovcnt, offset, len, [&](char* p, size_t n, size_t) { std::memset(p, 0, n); });
}

void iov_slice(const iovec* iov, int iovcnt, size_t offset, size_t len, std::vector<iovec>& out) {
  for_each_piece(iov, iovcnt, offset, len, [&](char* p, size_t n, size_t) { out.push_back({p, n}); });
}

}  // namespace sluice::bdev
