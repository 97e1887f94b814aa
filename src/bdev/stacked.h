// What every virtual bdev stacked on a base bdev shares (internal to src/bdev).
//
// - StackedBdev opens its base with an exclusive claim, copies the base's geometry, and
//   links hot-remove both ways: when the base is removed the stacked device unregisters
//   itself (its own handles then see Errc::aborted), and when the stacked device is removed
//   a base it created from a nested spec ("error:malloc:64M" makes "<name>_base") goes too.
//   The claim on the base is released when the stacked device is destroyed: after it was
//   unregistered and its last handle closed.
// - StackedQueue holds the channel's own base channel (made in create_queue(), on the thread
//   that owns the channel) and sends BaseOps to it. A BaseOp's completion always runs from
//   poll(), never inside the call that sent it; a base that is full (Errc::busy) is retried
//   from poll(), so a stacked queue never refuses a request.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/intrusive_list.h"
#include "bdev/backend.h"
#include "bdev/modules.h"

namespace sluice::bdev {

class StackedQueue;

// One request to the base device. Lives wherever its sender puts it (in a BdevIo's driver
// area for plain forwarding, on the heap for crashsim's chains) until `done` runs.
struct BaseOp {
  using Done = void (*)(BaseOp* op, Errc status);

  IoType type = IoType::read;
  int iovcnt = 0;
  const iovec* iov = nullptr;  // read/write only; must stay valid until `done` when iovcnt > 16
  uint64_t offset_blocks = 0;
  uint64_t num_blocks = 0;
  Done done = nullptr;
  StackedQueue* queue = nullptr;
  Errc status = Errc::ok;  // set when the base refused the request outright
  BaseOp* next = nullptr;
};

class StackedBdev : public Bdev {
 public:
  // An open base device.
  struct Base {
    std::unique_ptr<BdevDesc> desc;
    bool owned = false;  // made from a nested spec: unregistered together with the stacked device
    // Cleared once the stacked device has left the registry, so that a late hot-remove of
    // the base does not unregister an unrelated device that reused the name.
    std::shared_ptr<std::atomic<bool>> linked;
  };

  // Opens the registered bdev `base_name` with an exclusive claim, for the stacked device
  // `name` (which unregisters itself when the base is removed).
  static Result<Base> open_base(std::string_view name, std::string_view base_name);
  // Creates the base from the nested spec in args.target, registers it as
  // "<args.name>_base" and opens it as above; the base is owned.
  static Result<Base> create_base(const SpecArgs& args);

  // The stacked device takes the base's geometry, plus the operations in `extra_supported`.
  StackedBdev(std::string name, std::string scheme, Base base, uint32_t extra_supported = 0);
  ~StackedBdev() override;

  std::string spec() const override;
  void on_unregistered() override;

  BdevDesc& base_desc() const { return *base_.desc; }
  const std::string& base_name() const { return base_name_; }

  // The calling thread's channel to the base (for create_queue() and control paths). The
  // generic BdevDesc counts channels without synchronisation, so these serialise the calls.
  Result<BdevChannel*> get_base_channel();
  void put_base_channel(BdevChannel* ch);

 protected:
  // Derived destructors may still do I/O on the base: the claim is dropped in ~StackedBdev.
  bool base_removed() const { return base_.desc->bdev().removed(); }

 private:
  void drop_owned_base();

  Base base_;
  std::string base_name_;
  std::string scheme_;
  std::mutex base_channels_mu_;  // control path only: channel create/destroy
  std::atomic<bool> owned_base_dropped_{false};
};

class StackedQueue : public BackendQueue {
 public:
  StackedQueue(StackedBdev& owner, BdevChannel* base_ch) : owner_(owner), base_ch_(base_ch) {}
  ~StackedQueue() override;

  // Polls the base channel (running BaseOp completions), retries requests the base refused
  // as busy, delivers requests it refused outright, then runs on_poll().
  int poll() final;

 protected:
  // Sends `op` to the base. op->done runs later, from poll().
  void send(BaseOp* op);
  // Sends the request `io` unchanged to the base, using `op` (usually in io's driver area).
  void forward(BdevIo* io, BaseOp* op, BaseOp::Done done);
  // Extra per-poll work of a derived queue; returns events handled.
  virtual int on_poll() { return 0; }

  StackedBdev& owner() const { return owner_; }
  BdevDesc& base() const { return owner_.base_desc(); }
  BdevChannel* base_channel() const { return base_ch_; }

 private:
  static void on_base_done(void* arg, Errc status);
  Status issue(BaseOp* op);

  StackedBdev& owner_;
  BdevChannel* base_ch_;
  IntrusiveQueue<BaseOp> retry_;   // the base was full
  IntrusiveQueue<BaseOp> failed_;  // the base refused; completed from poll()
};

// Byte-level helpers over an iovec array (offsets count from the start of the array).
void iov_copy_from(const iovec* iov, int iovcnt, size_t offset, void* dst, size_t len);
void iov_copy_to(const iovec* iov, int iovcnt, size_t offset, const void* src, size_t len);
void iov_zero(const iovec* iov, int iovcnt, size_t offset, size_t len);
// Appends to `out` the segments that cover [offset, offset + len) of the array.
void iov_slice(const iovec* iov, int iovcnt, size_t offset, size_t len, std::vector<iovec>& out);

}  // namespace sluice::bdev
