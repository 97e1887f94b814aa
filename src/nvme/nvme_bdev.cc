// The nvme bdev: one bdev per namespace, nvme:BDF[/NSID][?qd=N&mt=BYTES&to=MS] over PCIe, or
// nvme-tcp:ADDR:PORT/SUBNQN[/NSID][?...&hdgst=1&ddgst=1] over NVMe/TCP. Every bdev of a BDF
// (or of a TCP subsystem) shares one Controller; each channel gets its own I/O queue pair,
// created on the channel's thread. Requests map one-to-one onto NVMe commands except write_zeroes and
// unmap, which may need several (16-bit block counts, 256 ranges per DSM command). A
// command the queue has no room for waits in the channel's deferred list and is retried at
// the next poll, so back-pressure never fails a request.
#include <algorithm>
#include <functional>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "base/intrusive_list.h"
#include "base/log.h"
#include "base/number.h"
#include "bdev/backend.h"
#include "bdev/channel.h"
#include "bdev/spec.h"
#include "nvme/fabrics_device.h"
#include "nvme/nvme.h"

namespace sluice::nvme {
namespace {

constexpr uint32_t kMaxWriteZeroesBlocks = 65536;
constexpr uint32_t kDsmRangesPerCommand = 256;
constexpr uint64_t kMaxDsmRangeBlocks = 0xffffffffull;

// Per-request state, kept in BdevIo::driver.
struct IoCtx {
  uint64_t next;  // write_zeroes/unmap: first block not yet handed to a command
  uint64_t end;
  uint32_t pending;  // commands in flight
  Errc status;
  bool issued;    // read/write/flush: the one command went out
  bool deferred;  // waiting in the deferred list; only retry_deferred() completes it then
};

class NvmeQueue final : public bdev::BackendQueue {
 public:
  NvmeQueue(std::unique_ptr<IoQueue> q, uint32_t nsid) : q_(std::move(q)), nsid_(nsid) {}

  void submit(bdev::BdevIo* io) override {
    auto* ctx = io->driver_ctx<IoCtx>();
    *ctx = {io->offset_blocks, io->offset_blocks + io->num_blocks, 0, Errc::ok, false, false};
    if (io->type == bdev::IoType::reset) {
      io->channel->complete(io, Errc::ok);
      return;
    }
    if (!deferred_.empty() || !issue(io)) {
      ctx->deferred = true;
      deferred_.push_back(io);
    } else if (ctx->pending == 0) {
      io->channel->complete(io, ctx->status);  // refused outright
    }
  }

  int poll() override {
    if (!deferred_.empty()) retry_deferred();
    return q_->poll();
  }

 private:
  static bool single_command(const bdev::BdevIo* io) {
    return io->type == bdev::IoType::read || io->type == bdev::IoType::write || io->type == bdev::IoType::flush;
  }
  static bool more_to_issue(bdev::BdevIo* io) {
    auto* ctx = io->driver_ctx<IoCtx>();
    if (ctx->status != Errc::ok) return false;
    return single_command(io) ? !ctx->issued : ctx->next < ctx->end;
  }

  // Hands `io`'s next commands to the queue. False when the queue filled up first.
  bool issue(bdev::BdevIo* io) {
    auto* ctx = io->driver_ctx<IoCtx>();
    switch (io->type) {
      case bdev::IoType::read:
      case bdev::IoType::write: {
        const auto nlb = static_cast<uint32_t>(io->num_blocks);
        Errc e = io->type == bdev::IoType::read ? q_->read(nsid_, io->iovs, io->iovcnt, io->offset_blocks, nlb, done, io)
                                                : q_->write(nsid_, io->iovs, io->iovcnt, io->offset_blocks, nlb, done, io);
        if (e == Errc::busy) return false;
        ctx->issued = true;
        account(ctx, e);
        return true;
      }
      case bdev::IoType::flush: {
        Errc e = q_->flush(nsid_, done, io);
        if (e == Errc::busy) return false;
        ctx->issued = true;
        account(ctx, e);
        return true;
      }
      case bdev::IoType::write_zeroes:
        while (more_to_issue(io)) {
          const auto n = static_cast<uint32_t>(std::min<uint64_t>(ctx->end - ctx->next, kMaxWriteZeroesBlocks));
          Errc e = q_->write_zeroes(nsid_, ctx->next, n, done, io);
          if (e == Errc::busy) return false;
          account(ctx, e);
          ctx->next += n;
        }
        return true;
      case bdev::IoType::unmap:
        while (more_to_issue(io)) {
          spec::DsmRange ranges[kDsmRangesPerCommand];
          uint32_t count = 0;
          uint64_t at = ctx->next;
          while (count < kDsmRangesPerCommand && at < ctx->end) {
            const uint64_t n = std::min(ctx->end - at, kMaxDsmRangeBlocks);
            ranges[count++] = {0, static_cast<uint32_t>(n), at};
            at += n;
          }
          Errc e = q_->deallocate(nsid_, ranges, count, done, io);
          if (e == Errc::busy) return false;
          account(ctx, e);
          ctx->next = at;
        }
        return true;
      case bdev::IoType::reset:
        return true;
    }
    return true;
  }

  static void account(IoCtx* ctx, Errc e) {
    if (e == Errc::ok) ++ctx->pending;
    else if (ctx->status == Errc::ok) ctx->status = e;
  }

  void retry_deferred() {
    while (bdev::BdevIo* io = deferred_.front()) {
      if (more_to_issue(io) && !issue(io)) return;
      deferred_.pop_front();
      auto* ctx = io->driver_ctx<IoCtx>();
      ctx->deferred = false;
      if (ctx->pending == 0) io->channel->complete(io, ctx->status);
    }
  }

  static void done(void* arg, const Completion& c) {
    auto* io = static_cast<bdev::BdevIo*>(arg);
    auto* ctx = io->driver_ctx<IoCtx>();
    --ctx->pending;
    if (!c.ok() && ctx->status == Errc::ok) {
      ctx->status = c.errc();  // and issue nothing more
      log::debug("nvme: {} of {} blocks at {} failed: {}", bdev::io_type_name(io->type), io->num_blocks,
                 io->offset_blocks, c.reset_aborted ? std::string("controller reset") : status_text(c.status));
    }
    if (ctx->pending == 0 && !ctx->deferred && !more_to_issue(io)) io->channel->complete(io, ctx->status);
  }

  std::unique_ptr<IoQueue> q_;
  const uint32_t nsid_;
  IntrusiveQueue<bdev::BdevIo> deferred_;
};

class NvmeBdev final : public bdev::Bdev {
 public:
  NvmeBdev(std::string name, std::string spec, const bdev::Geometry& g, std::shared_ptr<Controller> ctrl,
           uint32_t nsid, uint64_t timeout_ms)
      : Bdev(std::move(name), g), spec_(std::move(spec)), ctrl_(std::move(ctrl)), nsid_(nsid), timeout_ms_(timeout_ms) {}

  std::string spec() const override { return spec_; }

  Result<std::unique_ptr<bdev::BackendQueue>> create_queue() override {
    const uint32_t entries = geometry().queue_depth + bdev::BdevChannel::kChildPool + 1;
    auto q = ctrl_->create_io_queue(entries);
    if (!q.ok()) return q.status();
    if (timeout_ms_ != 0) (*q)->set_timeout_ms(timeout_ms_);
    return std::unique_ptr<bdev::BackendQueue>(new NvmeQueue(std::move(q.value()), nsid_));
  }

 private:
  std::string spec_;
  std::shared_ptr<Controller> ctrl_;
  uint32_t nsid_;
  uint64_t timeout_ms_;
};

// The requests a channel may hold for a controller whose queues have `max_entries` slots
// (CAP.MQES + 1, at least 2). A queue holds the requests, the channel's split children
// (kChildPool) and one slot a full ring keeps empty. A controller too small for the children
// still gets every usable slot: NvmeQueue defers what does not fit, so a smaller hardware
// queue costs throughput, never correctness. Unsigned: never subtract past zero.
uint32_t fit_queue_depth(uint32_t wanted, uint32_t max_entries) {
  constexpr uint32_t kReserved = bdev::BdevChannel::kChildPool + 1;
  if (max_entries > kReserved) return std::min(wanted, max_entries - kReserved);
  return max_entries > 2 ? std::min(wanted, max_entries - 1) : 1;
}

// Controllers shared by the bdevs of one BDF (or TCP subsystem, keyed "tcp:ADDR/SUBNQN");
// the last bdev to go shuts it down. `open` brings one up when none is alive.
std::shared_ptr<Controller> shared_controller(const std::string& key, Status& error,
                                              const std::function<Result<std::shared_ptr<Controller>>()>& open) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<Controller>> controllers;
  std::lock_guard lock(mu);
  if (auto ctrl = controllers[key].lock()) return ctrl;
  Result<std::shared_ptr<Controller>> opened = open();
  if (!opened.ok()) {
    error = opened.status();
    return nullptr;
  }
  controllers[key] = *opened;
  return *opened;
}

std::shared_ptr<Controller> shared_controller(const std::string& bdf, Status& error) {
  return shared_controller(bdf, error, [&] { return Controller::open(bdf); });
}

// The bdev of namespace `nsid` of `ctrl`; `spec` is its canonical device spec.
Result<std::shared_ptr<bdev::Bdev>> namespace_bdev(const bdev::SpecArgs& args, std::shared_ptr<Controller> ctrl,
                                                   uint32_t nsid, std::string spec, uint64_t timeout_ms) {
  auto ns = ctrl->namespace_info(nsid);
  if (!ns.ok()) return ns.status();
  const ControllerInfo& info = ctrl->info();
  bdev::Geometry g;
  g.block_size = ns->block_size;
  g.num_blocks = ns->size_blocks;
  g.max_transfer_blocks = info.max_transfer_bytes / ns->block_size;
  g.optimal_io_blocks = 0;
  // PRP1 is dword-aligned (anything else the queue bounces anyway); a fabric takes any memory.
  g.buf_align = ctrl->device().fabrics() != nullptr ? 1 : 4;
  g.supported = bdev::io_bit(bdev::IoType::read) | bdev::io_bit(bdev::IoType::write) |
                bdev::io_bit(bdev::IoType::flush) | bdev::io_bit(bdev::IoType::reset);
  if (info.supports_dsm) g.supported |= bdev::io_bit(bdev::IoType::unmap);
  if (info.supports_write_zeroes) g.supported |= bdev::io_bit(bdev::IoType::write_zeroes);
  g.unmap_zeroes = info.supports_dsm && ns->deallocate_reads_zeroes;
  g.queue_depth = 128;
  const uint32_t block_size = g.block_size;
  SLUICE_RETURN_IF_ERROR(args.apply_common(g));
  if (g.block_size != block_size)
    return Status(Errc::invalid_argument, "nvme: the block size comes from the namespace format");
  g.queue_depth = fit_queue_depth(g.queue_depth, info.max_queue_entries);
  return std::shared_ptr<bdev::Bdev>(new NvmeBdev(args.name, std::move(spec), g, std::move(ctrl), nsid, timeout_ms));
}

// "PATH/NSID" -> (PATH, NSID); no numeric last component: (all, 1).
std::pair<std::string_view, uint32_t> split_nsid(std::string_view rest, bool nsid_required_numeric, Status& error) {
  const size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos) return {rest, 1};
  const std::string_view ns = rest.substr(slash + 1);
  auto v = parse_uint(ns, 1, 0xfffffffe);
  if (v.ok()) return {rest.substr(0, slash), static_cast<uint32_t>(*v)};
  if (nsid_required_numeric)
    error = Status(Errc::invalid_argument, fmt::format("nvme: '{}' is not a namespace id", ns));
  return {rest, 1};
}

Result<std::shared_ptr<bdev::Bdev>> make_nvme_bdev(const bdev::SpecArgs& in) {
  // Registered schemes get the target unparsed: split off ?options here.
  bdev::SpecArgs args = in;
  auto split = bdev::split_options(in.target);
  if (!split.ok()) return Status(split.status().code(), "nvme: " + split.status().message());
  std::string_view rest = split->target;
  args.options.insert(split->options.begin(), split->options.end());
  SLUICE_RETURN_IF_ERROR(args.check_known({"qd", "mt", "to"}));
  Status bad_nsid;
  auto [bdf_text, nsid] = split_nsid(rest, /*nsid_required_numeric=*/true, bad_nsid);
  if (!bad_nsid.ok()) return bad_nsid;
  auto bdf = canonical_bdf(bdf_text);
  if (!bdf.ok()) return Status(bdf.status().code(), "nvme: " + bdf.status().message());
  auto timeout = args.size_option("to", 0);
  if (!timeout.ok()) return timeout.status();

  Status error;
  auto ctrl = shared_controller(*bdf, error);
  if (!ctrl) return error;
  return namespace_bdev(args, std::move(ctrl), nsid, fmt::format("nvme:{}/{}", *bdf, nsid), *timeout);
}

// One association per subsystem and host: another host NQN is another controller.
std::string tcp_controller_key(const TcpTarget& t) { return fmt::format("tcp:{} as {}", t.to_string(), t.hostnqn); }

// nvme-tcp:ADDR:PORT/SUBNQN[/NSID]: an NQN has no '/', so a numeric last component is the NSID.
Result<std::shared_ptr<bdev::Bdev>> make_nvme_tcp_bdev(const bdev::SpecArgs& in) {
  bdev::SpecArgs args = in;
  auto split = bdev::split_options(in.target);
  if (!split.ok()) return Status(split.status().code(), "nvme-tcp: " + split.status().message());
  args.options.insert(split->options.begin(), split->options.end());
  SLUICE_RETURN_IF_ERROR(args.check_known({"qd", "mt", "to", "hdgst", "ddgst", "hostnqn"}));
  Status unused;
  auto [where, nsid] = split_nsid(split->target, /*nsid_required_numeric=*/false, unused);
  auto target = TcpTarget::parse(where);
  if (!target.ok()) return Status(target.status().code(), "nvme-tcp: " + target.status().message());
  auto timeout = args.size_option("to", 0);
  if (!timeout.ok()) return timeout.status();
  auto hdgst = args.size_option("hdgst", 0), ddgst = args.size_option("ddgst", 0);
  if (!hdgst.ok() || !ddgst.ok() || *hdgst > 1 || *ddgst > 1)
    return Status(Errc::invalid_argument, "nvme-tcp: hdgst and ddgst are 0 or 1");
  target->header_digest = *hdgst == 1;
  target->data_digest = *ddgst == 1;
  if (auto h = args.options.find("hostnqn"); h != args.options.end()) target->hostnqn = h->second;
  Status error;
  auto ctrl = shared_controller(tcp_controller_key(*target), error, [&] { return Controller::connect_tcp(*target); });
  if (!ctrl) return error;
  std::string spec = fmt::format("nvme-tcp:{}/{}", target->to_string(), nsid);
  std::string options;
  if (target->header_digest || target->data_digest) options = fmt::format("hdgst={}&ddgst={}", *hdgst, *ddgst);
  if (!target->hostnqn.empty()) options += fmt::format("{}hostnqn={}", options.empty() ? "" : "&", target->hostnqn);
  if (!options.empty()) spec += "?" + options;
  return namespace_bdev(args, std::move(ctrl), nsid, std::move(spec), *timeout);
}

[[maybe_unused]] const bool kSchemeRegistered = register_bdev_scheme().ok();

}  // namespace

Status register_bdev_scheme() {
  static const Status registered = [] {
    Status st = bdev::register_scheme("nvme", make_nvme_bdev);
    if (st.code() == Errc::exists) st = Status::Ok();
    if (!st.ok()) return st;
    st = bdev::register_scheme("nvme-tcp", make_nvme_tcp_bdev);
    return st.code() == Errc::exists ? Status::Ok() : st;
  }();
  return registered;
}

namespace {

// One bdev per active namespace of `ctrl`, each made from "`spec_root`/NSID?`options`". The
// caller holds `ctrl` across the loop so that the controller is brought up once for all.
Result<std::vector<std::string>> make_namespace_bdevs(const Controller& ctrl, const std::string& spec_root,
                                                      std::string_view prefix, std::string_view options) {
  std::vector<std::string> names;
  for (const NamespaceInfo& ns : ctrl.namespaces()) {
    std::string spec = fmt::format("{}/{}", spec_root, ns.nsid);
    if (!options.empty()) spec += fmt::format("?{}", options);
    auto made = bdev::create(spec, fmt::format("{}n{}", prefix, ns.nsid));
    if (!made.ok()) {
      for (const std::string& n : names) (void)bdev::unregister(n);
      return made.status();
    }
    names.push_back(*made);
  }
  if (names.empty())
    return Status(Errc::not_found, fmt::format("nvme: controller {} has no active namespace", spec_root));
  return names;
}

}  // namespace

Result<std::vector<std::string>> attach_namespaces(std::string_view bdf_text, std::string_view prefix,
                                                   std::string_view options) {
  SLUICE_RETURN_IF_ERROR(register_bdev_scheme());
  auto bdf = canonical_bdf(bdf_text);
  if (!bdf.ok()) return Status(bdf.status().code(), "nvme: " + bdf.status().message());
  Status error;
  auto ctrl = shared_controller(*bdf, error);
  if (!ctrl) return error;
  return make_namespace_bdevs(*ctrl, fmt::format("nvme:{}", *bdf), prefix, options);
}

Result<std::vector<std::string>> attach_tcp_namespaces(const TcpTarget& target, std::string_view prefix,
                                                       std::string_view options) {
  SLUICE_RETURN_IF_ERROR(register_bdev_scheme());
  Status error;
  auto ctrl = shared_controller(tcp_controller_key(target), error, [&] { return Controller::connect_tcp(target); });
  if (!ctrl) return error;
  std::string opts(options);
  auto add = [&](const std::string& kv) { opts += (opts.empty() ? "" : "&") + kv; };
  if (target.header_digest || target.data_digest)
    add(fmt::format("hdgst={}&ddgst={}", target.header_digest ? 1 : 0, target.data_digest ? 1 : 0));
  if (!target.hostnqn.empty()) add("hostnqn=" + target.hostnqn);
  return make_namespace_bdevs(*ctrl, fmt::format("nvme-tcp:{}", target.to_string()), prefix, opts);
}

}  // namespace sluice::nvme
