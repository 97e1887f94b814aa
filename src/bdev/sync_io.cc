// Blocking helpers: submit one request and poll the channel until it completes.
#include <memory>

#include <fmt/format.h>

#include "base/clock.h"
#include "bdev/channel.h"

namespace sluice::bdev {
namespace {

struct Waiter {
  bool done = false;
  Errc status = Errc::ok;
  static void on_done(void* arg, Errc status) {
    auto* w = static_cast<Waiter*>(arg);
    w->status = status;
    w->done = true;
  }
};

template <typename Submit>
Status run(BdevChannel* ch, uint64_t timeout_ms, std::string_view what, Submit&& submit) {
  if (ch == nullptr) return Status(Errc::invalid_argument, "no channel");
  // Heap-held so that a request still in flight after a timeout completes into valid memory
  // (the waiter is then leaked on purpose: a few bytes, instead of a write to a dead stack).
  auto owned = std::make_unique<Waiter>();
  Waiter& w = *owned;
  const uint64_t deadline = clock::now_ns() + timeout_ms * 1000000;
  for (;;) {
    Status st = submit(&Waiter::on_done, &w);
    if (st.ok()) break;
    if (st.code() != Errc::busy) return st;
    ch->poll();  // the channel is full: let something complete, then retry
    if (clock::now_ns() > deadline) return Status(Errc::aborted, fmt::format("{}: channel stayed full", what));
  }
  while (!w.done) {
    ch->poll();
    if (clock::now_ns() > deadline) {
      (void)owned.release();
      return Status(Errc::aborted, fmt::format("{} did not complete within {} ms", what, timeout_ms));
    }
  }
  if (w.status != Errc::ok) return Status(w.status, fmt::format("{} on bdev {} failed", what, ch->bdev().name()));
  return Status::Ok();
}

}  // namespace

Status SyncIo::read(void* buf, uint64_t off, uint64_t n) {
  return run(ch, timeout_ms, "read", [&](IoCallback cb, void* a) { return desc.read(ch, buf, off, n, cb, a); });
}
Status SyncIo::write(const void* buf, uint64_t off, uint64_t n) {
  return run(ch, timeout_ms, "write", [&](IoCallback cb, void* a) { return desc.write(ch, buf, off, n, cb, a); });
}
Status SyncIo::readv(const iovec* iov, int cnt, uint64_t off, uint64_t n) {
  return run(ch, timeout_ms, "readv", [&](IoCallback cb, void* a) { return desc.readv(ch, iov, cnt, off, n, cb, a); });
}
Status SyncIo::writev(const iovec* iov, int cnt, uint64_t off, uint64_t n) {
  return run(ch, timeout_ms, "writev",
             [&](IoCallback cb, void* a) { return desc.writev(ch, iov, cnt, off, n, cb, a); });
}
Status SyncIo::flush() {
  return run(ch, timeout_ms, "flush", [&](IoCallback cb, void* a) { return desc.flush(ch, cb, a); });
}
Status SyncIo::unmap(uint64_t off, uint64_t n) {
  return run(ch, timeout_ms, "unmap", [&](IoCallback cb, void* a) { return desc.unmap(ch, off, n, cb, a); });
}
Status SyncIo::write_zeroes(uint64_t off, uint64_t n) {
  return run(ch, timeout_ms, "write_zeroes",
             [&](IoCallback cb, void* a) { return desc.write_zeroes(ch, off, n, cb, a); });
}
Status SyncIo::reset() {
  return run(ch, timeout_ms, "reset", [&](IoCallback cb, void* a) { return desc.reset(ch, cb, a); });
}

}  // namespace sluice::bdev
