#include "blobtool/device.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "bdev/device_spec.h"

namespace sluice::blobtool {

Result<std::unique_ptr<Device>> Device::create(std::string_view arg) {
  if (arg.empty()) return Status(Errc::invalid_argument, "no device given (--device SPEC or a path)");
  std::unique_ptr<Device> d(new Device());
  d->spec_ = bdev::device_spec(arg);
  auto name = bdev::create(d->spec_, d->spec_);
  if (!name.ok()) return name.status();
  d->name_ = name.value();
  return d;
}

Device::~Device() {
  if (!name_.empty()) (void)bdev::unregister(name_);
}

bdev::Geometry Device::geometry() const {
  auto b = bdev::find(name_);
  return b ? b->geometry() : bdev::Geometry{};
}

Status Device::read_pages(uint64_t page, char* buf, uint64_t pages) const {
  bdev::OpenOptions o;
  o.write = false;
  o.claim = bdev::Claim::shared;
  auto desc = bdev::open(name_, o);
  if (!desc.ok()) return desc.status();
  const auto& g = (*desc)->geometry();
  if (g.block_size == 0 || g.block_size > 4096 || 4096 % g.block_size != 0)
    return Status(Errc::not_supported, fmt::format("{} has {}-byte blocks; a blobstore needs blocks that divide 4096",
                                                   spec_, g.block_size));
  const uint64_t bpp = 4096 / g.block_size;
  if ((page + pages) * bpp > g.num_blocks)
    return Status(Errc::out_of_range, fmt::format("{}: pages {}..{} are beyond the device ({} pages)", spec_, page,
                                                  page + pages - 1, g.num_blocks / bpp));
  auto ch = (*desc)->get_channel();
  if (!ch.ok()) return ch.status();
  Status st = bdev::SyncIo{**desc, *ch}.read(buf, page * bpp, pages * bpp);
  (void)(*desc)->put_channel(*ch);
  return st;
}

PageBuf::PageBuf(uint64_t pages)
    : p_(static_cast<char*>(std::aligned_alloc(4096, std::max<uint64_t>(pages, 1) * 4096))) {
  if (p_ == nullptr) throw std::bad_alloc();
  std::memset(p_, 0, std::max<uint64_t>(pages, 1) * 4096);
}
PageBuf::~PageBuf() { std::free(p_); }

}  // namespace sluice::blobtool
