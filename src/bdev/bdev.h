// The block-device API: what every Sluice layer above uses to do I/O.
//
//   auto desc = bdev::open("malloc0");                    // a handle with a claim
//   auto ch = (*desc)->get_channel();                     // this thread's channel
//   (*desc)->read(*ch, buf, lba, nblocks, on_done, ctx);  // queue; completes in poll()
//   while (!done) (*ch)->poll();                          // or let a reactor poll it
//
// Rules (docs/design.md, "Rules of the data path"):
// - A channel belongs to the thread that got it. Submit and poll only from that thread;
//   completion callbacks run there, inside poll(), never inside the submit call.
// - Requests come from a per-channel pool. A full pool returns Errc::busy: poll, or
//   register with wait_for_room(), and resubmit. Nothing aborts.
// - Buffers should be aligned to geometry().buf_align (address and every segment length):
//   others are copied through a bounce buffer (a copy and an allocation per request; counted
//   in IoStats::bounced). I/O larger than max_transfer_blocks is split and completes once,
//   as a whole.
// - iovec arrays passed to readv/writev must stay valid until the completion.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <atomic>
#include <functional>
#include <mutex>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/histogram.h"
#include "base/status.h"
#include "bdev/stats.h"
#include "thread/io_channel.h"

namespace sluice::bdev {

enum class IoType : uint8_t { read, write, flush, unmap, write_zeroes, reset };
inline constexpr int kIoTypes = 6;
std::string_view io_type_name(IoType type);
inline constexpr uint32_t io_bit(IoType t) { return 1u << static_cast<int>(t); }

struct Geometry {
  uint32_t block_size = 512;
  uint64_t num_blocks = 0;
  uint32_t optimal_io_blocks = 0;    // 0: no preference
  uint32_t max_transfer_blocks = 0;  // 0: unlimited; larger reads and writes are split
  uint32_t buf_align = 1;            // buffer address and segment length alignment
  uint32_t supported = 0;            // io_bit() mask
  bool unmap_zeroes = false;         // unmapped blocks read back as zeroes
  uint32_t queue_depth = 256;        // requests per channel before Errc::busy

  uint64_t size_bytes() const { return num_blocks * block_size; }
  bool supports(IoType t) const { return (supported & io_bit(t)) != 0; }
};

// Runs on the submitting thread when the request completes. Its slot is already free, so
// the callback may submit again at once. It must not put the channel back (put_channel):
// the channel's poll() still uses it after the callback returns; return it later, e.g. by
// a message to the same thread.
using IoCallback = void (*)(void* arg, Errc status);

// A run of blocks that read the same way, from block_status(): data, or a hole (nothing is
// stored for it: a thin volume's unallocated clusters) that reads as zeroes.
struct BlockRun {
  uint64_t blocks = 0;
  bool hole = false;
};

// Rate limits (qos.h): 0 means no limit. Reads and writes count; other requests pass.
struct QosLimits {
  uint64_t rw_ios_per_sec = 0;    // reads + writes per second
  uint64_t rw_bytes_per_sec = 0;  // bytes read + written per second
  uint64_t r_bytes_per_sec = 0;
  uint64_t w_bytes_per_sec = 0;
  bool operator==(const QosLimits&) const = default;
};
class Qos;

class BdevChannel;
class BackendQueue;

// A registered callback for back-pressure: runs (once) when a request slot frees up.
struct IoWaitEntry {
  void (*fn)(void* arg) = nullptr;
  void* arg = nullptr;
  IoWaitEntry* next = nullptr;
};

enum class Claim : uint8_t {
  shared,     // others may open the device too
  exclusive,  // nobody else may open it while this handle lives (virtual bdevs claim bases)
};

struct OpenOptions {
  bool write = true;
  Claim claim = Claim::shared;
  // Hot-remove: runs on the thread that removed the device. The handle stays valid, but new
  // I/O fails with Errc::aborted; close it when convenient.
  std::function<void()> on_remove;
};

// A block device. Backends subclass it (backend.h); users reach it through BdevDesc::bdev()
// or find() for its name, geometry, spec and statistics.
class Bdev : public thread::IoDevice {
 public:
  Bdev(std::string name, Geometry geometry);
  ~Bdev() override;

  const std::string& name() const { return name_; }
  const Geometry& geometry() const { return geometry_; }
  // The spec this device was made from, e.g. "malloc:64M" (for listings and JSON output).
  virtual std::string spec() const = 0;
  // Runs on the thread that will own the channel.
  virtual Result<std::unique_ptr<BackendQueue>> create_queue() = 0;
  // Hook for hot-remove: virtual bdevs pass it up to their own handles.
  virtual void on_unregistered() {}
  // Claims the host file or block device behind this bdev against other processes (and
  // other bdevs over the same file), the way Claim::exclusive does inside one registry: a
  // write lock excludes every other lock, a read lock only write locks. open() takes it for
  // a bdev's first handle (a write lock if that handle writes, raised when a later handle
  // writes) and close() drops it with the last, so no two processes ever write one image.
  // It never waits: a conflict is Errc::busy with a message saying who holds what. A no-op
  // for devices without a host file (null, malloc, virtual bdevs, nvme).
  virtual Status lock_backing(bool write) {
    (void)write;
    return Status::Ok();
  }
  virtual void unlock_backing() {}

  Result<std::unique_ptr<thread::IoChannel>> create_channel() final;

  bool removed() const { return removed_.load(std::memory_order_relaxed); }
  // Statistics over every channel this device ever had (live ones read racily, by design).
  IoStats stats() const;
  // Rate limits, enforced by every channel (qos.h). Any thread, any time.
  QosLimits qos_limits() const;
  void set_qos_limits(const QosLimits& limits);
  Qos& qos() const { return *qos_; }

 protected:
  void set_geometry(const Geometry& g) { geometry_ = g; }

 private:
  friend class BdevChannel;
  friend class Registry;
  std::string name_;
  Geometry geometry_;
  std::atomic<bool> removed_{false};
  std::unique_ptr<Qos> qos_;

  mutable std::mutex channels_mu_;  // control path only: channel create/destroy, stats
  std::vector<const BdevChannel*> live_channels_;
  IoStats retired_;  // stats of destroyed channels
};

// An open handle. Closing it (destruction) requires every channel it handed out to have been
// put back.
class BdevDesc {
 public:
  ~BdevDesc();
  BdevDesc(const BdevDesc&) = delete;
  BdevDesc& operator=(const BdevDesc&) = delete;

  Bdev& bdev() const { return *bdev_; }
  const Geometry& geometry() const;
  const std::string& name() const;
  bool writable() const { return write_; }

  Result<BdevChannel*> get_channel();
  Status put_channel(BdevChannel* ch);
  // Channels got through this handle and not yet put back, on any thread.
  int channels_held() const { return channels_.load(); }
  // Hands the channels still held to their threads before the handle closes: closing does not
  // report them, and each thread puts its own back with thread::put_io_channel (idle threads
  // of an application may keep theirs until they exit). Returns how many there were.
  int disown_channels() { return channels_.exchange(0); }

  Status read(BdevChannel* ch, void* buf, uint64_t offset_blocks, uint64_t num_blocks, IoCallback cb, void* arg);
  Status write(BdevChannel* ch, const void* buf, uint64_t offset_blocks, uint64_t num_blocks, IoCallback cb, void* arg);
  Status readv(BdevChannel* ch, const iovec* iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
               IoCallback cb, void* arg);
  Status writev(BdevChannel* ch, const iovec* iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks,
                IoCallback cb, void* arg);
  // Completes when every write completed before it was submitted is durable.
  Status flush(BdevChannel* ch, IoCallback cb, void* arg);
  Status unmap(BdevChannel* ch, uint64_t offset_blocks, uint64_t num_blocks, IoCallback cb, void* arg);
  Status write_zeroes(BdevChannel* ch, uint64_t offset_blocks, uint64_t num_blocks, IoCallback cb, void* arg);
  // Completes after every request in flight on this channel has completed, then resets the
  // backend's per-channel state where it has any.
  Status reset(BdevChannel* ch, IoCallback cb, void* arg);

  // How [offset_blocks, +num_blocks) reads, for clients that copy or map sparse devices
  // (NBD BLOCK_STATUS): runs in order from offset_blocks, at most `max_runs` of them, covering
  // the range or a prefix of it. Answered at once on the channel's thread from what the
  // device keeps in memory, no I/O; a device that keeps no allocation map reports data.
  Result<std::vector<BlockRun>> block_status(BdevChannel* ch, uint64_t offset_blocks, uint64_t num_blocks,
                                             size_t max_runs);

 private:
  friend class Registry;
  BdevDesc(std::shared_ptr<Bdev> bdev, const OpenOptions& opts);
  std::shared_ptr<Bdev> bdev_;
  bool write_;
  Claim claim_;
  std::function<void()> on_remove_;
  std::atomic<int> channels_{0};  // handed out on any thread
};

// ---- Registry -------------------------------------------------------------------------

// Creates a bdev from a spec and registers it under `name` (empty: a name derived from the
// spec). Specs: null:SIZE, malloc:SIZE, uring:PATH, aio:PATH, error:SPEC, crashsim:SPEC,
// each optionally followed by ?key=value&... (e.g. bs=4096). See spec.cc.
Result<std::string> create(std::string_view spec, std::string_view name = {});

// A layer above this one adds a spec scheme (e.g. "lvol") with a factory that makes the
// device from the parsed spec (bdev/spec.h); create() registers what the factory returns
// under args.name. Registered schemes are consulted after the built-in ones and receive
// everything after "scheme:" as args.target, unparsed (no ?options split off). A built-in
// or already registered scheme is refused with Errc::exists.
struct SpecArgs;
using SchemeFactory = std::function<Result<std::shared_ptr<Bdev>>(const SpecArgs&)>;
Status register_scheme(std::string_view scheme, SchemeFactory factory);

Status register_bdev(std::shared_ptr<Bdev> bdev);
// Removes the device from the registry and notifies its open handles (hot-remove).
Status unregister(std::string_view name);
Result<std::unique_ptr<BdevDesc>> open(std::string_view name, const OpenOptions& opts = {});
std::vector<std::string> list();
// The device registered under `name`, if any (for stats and introspection).
std::shared_ptr<Bdev> find(std::string_view name);
// Rate limits of a registered device (Errc::not_found without one).
Status set_qos_limits(std::string_view name, const QosLimits& limits);

// ---- Channels -------------------------------------------------------------------------

// The parts of a channel its users touch; the rest is internal (channel.h).
Status wait_for_room(BdevChannel* ch, IoWaitEntry* entry);
int poll(BdevChannel* ch);

// ---- Blocking helpers for control paths, tools and tests --------------------------------
// Each submits one request on `ch` and polls it until it completes (retrying while the
// channel is busy), giving up with Errc::aborted after `timeout_ms`.
struct SyncIo {
  BdevDesc& desc;
  BdevChannel* ch;
  uint64_t timeout_ms = 60000;

  Status read(void* buf, uint64_t offset_blocks, uint64_t num_blocks);
  Status write(const void* buf, uint64_t offset_blocks, uint64_t num_blocks);
  Status readv(const iovec* iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks);
  Status writev(const iovec* iov, int iovcnt, uint64_t offset_blocks, uint64_t num_blocks);
  Status flush();
  Status unmap(uint64_t offset_blocks, uint64_t num_blocks);
  Status write_zeroes(uint64_t offset_blocks, uint64_t num_blocks);
  Status reset();
};

}  // namespace sluice::bdev
