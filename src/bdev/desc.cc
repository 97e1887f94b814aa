#include <fmt/format.h>

#include "bdev/backend.h"
#include "bdev/channel.h"
#include "bdev/registry.h"

namespace sluice::bdev {

BdevDesc::BdevDesc(std::shared_ptr<Bdev> bdev, const OpenOptions& opts)
    : bdev_(std::move(bdev)), write_(opts.write), claim_(opts.claim), on_remove_(opts.on_remove) {}

BdevDesc::~BdevDesc() { Registry::instance().close(this); }

const Geometry& BdevDesc::geometry() const { return bdev_->geometry(); }
const std::string& BdevDesc::name() const { return bdev_->name(); }

Result<BdevChannel*> BdevDesc::get_channel() {
  auto ch = thread::get_io_channel(*bdev_);
  if (!ch.ok()) return ch.status();
  ++channels_;
  return static_cast<BdevChannel*>(ch.value());
}

Status BdevDesc::put_channel(BdevChannel* ch) {
  if (ch == nullptr || &ch->bdev() != bdev_.get())
    return Status(Errc::invalid_argument, fmt::format("channel does not belong to bdev {}", name()));
  SLUICE_RETURN_IF_ERROR(thread::put_io_channel(ch));
  --channels_;
  return Status::Ok();
}

namespace {

Status check(const BdevDesc& d, BdevChannel* ch, bool writes) {
  if (ch == nullptr || &ch->bdev() != &d.bdev()) [[unlikely]]
    return Status(Errc::invalid_argument, fmt::format("channel does not belong to bdev {}", d.name()));
  if (writes && !d.writable()) [[unlikely]]
    return Status(Errc::permission, fmt::format("bdev {} was opened read-only", d.name()));
  return Status::Ok();
}

}  // namespace

Status BdevDesc::read(BdevChannel* ch, void* buf, uint64_t offset_blocks, uint64_t num_blocks, IoCallback cb,
                      void* arg) {
  SLUICE_RETURN_IF_ERROR(check(*this, ch, false));
  iovec iov{buf, num_blocks * geometry().block_size};
  return ch->submit(IoType::read, &iov, 1, offset_blocks, num_blocks, cb, arg);
}

Status BdevDesc::write(BdevChannel* ch, const void* buf, uint64_t offset_blocks, uint64_t num_blocks,
                       IoCallback cb, void* arg) {
  SLUICE_RETURN_IF_ERROR(check(*this, ch, true));
  iovec iov{const_cast<void*>(buf), num_blocks * geometry().block_size};
  return ch->submit(IoType::write, &iov, 1, offset_blocks, num_blocks, cb, arg);
}

Status BdevDesc::readv(BdevChannel* ch, const iovec* iov, int iovcnt, uint64_t offset_blocks,
                       uint64_t num_blocks, IoCallback cb, void* arg) {
  SLUICE_RETURN_IF_ERROR(check(*this, ch, false));
  return ch->submit(IoType::read, iov, iovcnt, offset_blocks, num_blocks, cb, arg);
}

Status BdevDesc::writev(BdevChannel* ch, const iovec* iov, int iovcnt, uint64_t offset_blocks,
                        uint64_t num_blocks, IoCallback cb, void* arg) {
  SLUICE_RETURN_IF_ERROR(check(*this, ch, true));
  return ch->submit(IoType::write, iov, iovcnt, offset_blocks, num_blocks, cb, arg);
}

Status BdevDesc::flush(BdevChannel* ch, IoCallback cb, void* arg) {
  SLUICE_RETURN_IF_ERROR(check(*this, ch, true));
  return ch->submit(IoType::flush, nullptr, 0, 0, 0, cb, arg);
}

Status BdevDesc::unmap(BdevChannel* ch, uint64_t offset_blocks, uint64_t num_blocks, IoCallback cb, void* arg) {
  SLUICE_RETURN_IF_ERROR(check(*this, ch, true));
  return ch->submit(IoType::unmap, nullptr, 0, offset_blocks, num_blocks, cb, arg);
}

Status BdevDesc::write_zeroes(BdevChannel* ch, uint64_t offset_blocks, uint64_t num_blocks, IoCallback cb,
                              void* arg) {
  SLUICE_RETURN_IF_ERROR(check(*this, ch, true));
  return ch->submit(IoType::write_zeroes, nullptr, 0, offset_blocks, num_blocks, cb, arg);
}

Result<std::vector<BlockRun>> BdevDesc::block_status(BdevChannel* ch, uint64_t offset_blocks, uint64_t num_blocks,
                                                     size_t max_runs) {
  SLUICE_RETURN_IF_ERROR(check(*this, ch, false));
  if (bdev_->removed()) return Status(Errc::aborted, fmt::format("bdev {} was removed", name()));
  const uint64_t size = geometry().num_blocks;
  if (num_blocks == 0 || max_runs == 0 || offset_blocks > size || num_blocks > size - offset_blocks)
    return Status(Errc::out_of_range, fmt::format("block status of {} blocks at {} on bdev {} of {} blocks", num_blocks,
                                                  offset_blocks, name(), size));
  return ch->block_status(offset_blocks, num_blocks, max_runs);
}

Status BdevDesc::reset(BdevChannel* ch, IoCallback cb, void* arg) {
  SLUICE_RETURN_IF_ERROR(check(*this, ch, false));
  return ch->submit(IoType::reset, nullptr, 0, 0, 0, cb, arg);
}

}  // namespace sluice::bdev
