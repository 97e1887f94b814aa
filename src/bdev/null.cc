// The null bdev: every request succeeds at once and no data moves. It measures what the
// stack itself costs per I/O.
#include <fmt/format.h>

#include "base/size.h"
#include "bdev/channel.h"
#include "bdev/modules.h"

namespace sluice::bdev {
namespace {

class NullQueue final : public BackendQueue {
 public:
  void submit(BdevIo* io) override { io->channel->complete(io, Errc::ok); }
};

class NullBdev final : public Bdev {
 public:
  NullBdev(std::string name, Geometry g, std::string spec) : Bdev(std::move(name), g), spec_(std::move(spec)) {}
  std::string spec() const override { return spec_; }
  Result<std::unique_ptr<BackendQueue>> create_queue() override {
    return std::unique_ptr<BackendQueue>(new NullQueue());
  }

 private:
  std::string spec_;
};

}  // namespace

Result<std::shared_ptr<Bdev>> make_null_bdev(const SpecArgs& args) {
  SLUICE_RETURN_IF_ERROR(args.check_known({"bs", "qd", "mt"}));
  auto size = parse_size(args.target);
  if (!size.ok()) return Status(Errc::invalid_argument, fmt::format("null: {}", size.status().message()));
  Geometry g;
  g.queue_depth = 1024;
  SLUICE_RETURN_IF_ERROR(args.apply_common(g));
  if (*size < g.block_size) return Status(Errc::invalid_argument, fmt::format("null: size {} is smaller than one block", *size));
  g.num_blocks = *size / g.block_size;
  g.supported = io_bit(IoType::read) | io_bit(IoType::write) | io_bit(IoType::flush) | io_bit(IoType::unmap) |
                io_bit(IoType::write_zeroes) | io_bit(IoType::reset);
  return std::shared_ptr<Bdev>(new NullBdev(args.name, g, fmt::format("null:{}", format_size(*size))));
}

}  // namespace sluice::bdev
