// Fuzz target: vhost-user messages as the back end meets them (src/target/vhost/message.h,
// session.h): read from a socket by MessageReader, checked and handled by a Session whose
// device takes every request it finds on a started ring and returns it.
//
// Input: records of [request byte, flags byte, descriptor byte, payload length byte, payload].
// The request byte is taken modulo 40 (every defined request and some undefined ones); the
// descriptor byte's low 2 bits attach that many descriptors (a 64 KiB memfd, usable as guest
// memory or an inflight region, or an eventfd), and its top bit fills the first memfd with
// the next 4 KiB of input (rings and requests). Messages go over a socketpair, header and
// payload in one sendmsg as QEMU sends them, and the first failure ends the input, as it
// closes a real connection. Besides "never crash, leak or hang" it checks:
//   - a message the session handles was whole and passed check_message();
//   - with a device that finishes stops at once, handle() never has to wait;
//   - every reply carries the reply flag and fits the payload bound.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "target/vhost/session.h"

namespace sluice::fuzz {
namespace {

using namespace sluice::vhost;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "vhost_session_fuzz: BROKEN PROMISE: %s\n", what);
  std::abort();
}

// Serves every started ring at once: the chain walker and used ring over the fuzzer's memory.
class EchoDevice final : public Device {
 public:
  uint64_t features() const override { return (1ull << 32) | (1ull << 29) | (1ull << 28); }
  void set_features(uint64_t) override {}
  uint32_t num_queues() const override { return 2; }
  std::span<const uint8_t> config() const override { return cfg_; }
  Status start_queue(const QueueContext& ctx) override {
    Segment segs[32];
    InflightQueue inflight = ctx.inflight;
    inflight.settle(ctx.queue->used_idx());
    uint16_t head;
    for (int i = 0; i < 64 && ctx.queue->pop(&head); ++i) {
      Chain c;
      ChainError err = ctx.queue->walk(head, segs, &c);
      for (uint32_t s = 0; s < c.segments; ++s)
        if (segs[s].writable && segs[s].len > 0) segs[s].host[segs[s].len - 1] = 0;
      inflight.taken(head);
      inflight.returning(head);
      ctx.queue->push_used(head, err == ChainError::none ? 1 : 0);
      inflight.returned(head, ctx.queue->used_idx());
    }
    (void)ctx.queue->need_signal();
    return Status::Ok();
  }
  void stop_queue(uint32_t, std::function<void()> done) override { done(); }

 private:
  uint8_t cfg_[60] = {1, 2, 3};
};

class Sink final : public Session::Transport {
 public:
  explicit Sink(int fd) : fd_(fd) {}
  Status send(Message& reply, int fd) override {
    if (reply.size > kMaxPayload) broken("a reply beyond the payload bound");
    return write_message(fd_, reply, fd);
  }
  void resume(Status) override { broken("resume without a wait"); }

 private:
  int fd_;
};

int make_fd(uint8_t kind) {
  if (kind & 4) return eventfd(0, EFD_CLOEXEC);
  int fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
  if (fd >= 0 && ftruncate(fd, 64 << 10) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void drain(int fd) {
  uint8_t buf[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  for (int i = 0; i < 64; ++i) {
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) <= 0) return;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t k = 0; k < n; ++k) {
        int got;
        std::memcpy(&got, CMSG_DATA(c) + k * sizeof(int), sizeof got);
        close(got);
      }
    }
  }
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::fuzz;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  sluice::UniqueFd back(sv[0]), front(sv[1]);
  EchoDevice device;
  Sink sink(back.get());
  Session session(device, sink, "fuzz");
  MessageReader reader;
  Message m;
  size_t at = 0;
  for (int n = 0; n < 64 && size - at >= 4; ++n) {
    const uint32_t request = data[at] % 40, flags = data[at + 1], kinds = data[at + 2];
    uint32_t len = data[at + 3];
    at += 4;
    len = std::min<uint32_t>(len, static_cast<uint32_t>(size - at));
    uint8_t buf[12 + 256];
    std::memcpy(buf, &request, 4);
    std::memcpy(buf + 4, &flags, 4);
    std::memcpy(buf + 8, &len, 4);
    std::memcpy(buf + 12, data + at, len);
    at += len;
    int fds[3];
    const int nfds = kinds & 3;
    int made = 0;
    for (; made < nfds; ++made)
      if ((fds[made] = make_fd(static_cast<uint8_t>(kinds >> (2 + made)))) < 0) break;
    // The top bit fills the first descriptor (a memfd) with what follows, up to a page: a
    // guest with rings and requests in it.
    if ((kinds & 0x80) != 0 && made > 0) {
      const size_t fill = std::min<size_t>(4096, size - at);
      if (pwrite(fds[0], data + at, fill, 0) < 0) {
        // an eventfd takes no page: nothing filled
      }
      at += fill;
    }
    iovec iov{buf, 12 + len};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 3)]{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (made > 0) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * made);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * made);
      std::memcpy(CMSG_DATA(c), fds, sizeof(int) * made);
    }
    const ssize_t sent = sendmsg(front.get(), &msg, MSG_NOSIGNAL);
    for (int i = 0; i < made; ++i) close(fds[i]);  // the socket holds its own references
    if (sent != static_cast<ssize_t>(iov.iov_len)) break;
    auto got = reader.read(back.get(), &m);
    if (!got.ok()) break;
    if (!*got) broken("a whole message in the socket was not read");
    if (!check_message(m).ok()) {
      if (session.handle(m).ok()) broken("the session handled a message check_message refused");
      break;
    }
    auto r = session.handle(m);
    if (!r.ok()) break;
    if (*r == Session::Outcome::wait) broken("a wait with a device that stops at once");
    drain(front.get());
  }
  session.stop_all([] {});
  return 0;
}
