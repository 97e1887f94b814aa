// Reading, checking and writing vhost-user messages (message.h).
#include "target/vhost/message.h"

#include <sys/socket.h>

#include <cerrno>

#include <fmt/format.h>

namespace sluice::vhost {
namespace {

// What one request must carry: an exact payload size (or a minimum for the variable
// ones, checked further in check_message) and its descriptors.
struct Shape {
  uint32_t size;
  enum Fds : uint8_t { none, one_unless_nofd, one, per_region } fds;
};

bool shape_of(uint32_t request, Shape* s) {
  switch (static_cast<Request>(request)) {
    case Request::get_features:
    case Request::get_protocol_features:
    case Request::get_queue_num:
    case Request::set_owner:
    case Request::reset_owner: *s = {0, Shape::none}; return true;
    case Request::set_features:
    case Request::set_protocol_features: *s = {8, Shape::none}; return true;
    case Request::set_vring_num:
    case Request::set_vring_base:
    case Request::get_vring_base:
    case Request::set_vring_enable: *s = {sizeof(vhost_vring_state), Shape::none}; return true;
    case Request::set_vring_addr: *s = {sizeof(vhost_vring_addr), Shape::none}; return true;
    case Request::set_vring_kick:
    case Request::set_vring_call:
    case Request::set_vring_err: *s = {8, Shape::one_unless_nofd}; return true;
    case Request::set_mem_table: *s = {8, Shape::per_region}; return true;
    case Request::get_config:
    case Request::set_config: *s = {kConfigHeaderSize, Shape::none}; return true;
    case Request::get_inflight_fd: *s = {kInflightWireSize, Shape::none}; return true;
    case Request::set_inflight_fd: *s = {kInflightWireSize, Shape::one}; return true;
    case Request::set_log_base:
    case Request::set_log_fd:  // no LOG_SHMFD, no migration logging
    case Request::get_max_mem_slots: return false;  // no CONFIGURE_MEM_SLOTS
  }
  return false;
}

}  // namespace

std::string_view request_name(uint32_t request) {
  switch (static_cast<Request>(request)) {
    case Request::get_features: return "GET_FEATURES";
    case Request::set_features: return "SET_FEATURES";
    case Request::set_owner: return "SET_OWNER";
    case Request::reset_owner: return "RESET_OWNER";
    case Request::set_mem_table: return "SET_MEM_TABLE";
    case Request::set_log_base: return "SET_LOG_BASE";
    case Request::set_log_fd: return "SET_LOG_FD";
    case Request::set_vring_num: return "SET_VRING_NUM";
    case Request::set_vring_addr: return "SET_VRING_ADDR";
    case Request::set_vring_base: return "SET_VRING_BASE";
    case Request::get_vring_base: return "GET_VRING_BASE";
    case Request::set_vring_kick: return "SET_VRING_KICK";
    case Request::set_vring_call: return "SET_VRING_CALL";
    case Request::set_vring_err: return "SET_VRING_ERR";
    case Request::get_protocol_features: return "GET_PROTOCOL_FEATURES";
    case Request::set_protocol_features: return "SET_PROTOCOL_FEATURES";
    case Request::get_queue_num: return "GET_QUEUE_NUM";
    case Request::set_vring_enable: return "SET_VRING_ENABLE";
    case Request::get_config: return "GET_CONFIG";
    case Request::set_config: return "SET_CONFIG";
    case Request::get_inflight_fd: return "GET_INFLIGHT_FD";
    case Request::set_inflight_fd: return "SET_INFLIGHT_FD";
    case Request::get_max_mem_slots: return "GET_MAX_MEM_SLOTS";
  }
  return "unknown request";
}

Status check_message(const Message& m) {
  const std::string_view name = request_name(m.request);
  if ((m.flags & kVersionMask) != kVersion)
    return Status(Errc::invalid_argument, fmt::format("{}: version {} (only 1 is spoken)", name, m.flags & kVersionMask));
  Shape shape{};
  if (!shape_of(m.request, &shape))
    return Status(Errc::not_supported, fmt::format("request {} ({}) is not supported", m.request, name));
  // SET_MEM_TABLE and the config requests carry a variable part after a fixed one.
  uint32_t want = shape.size;
  if (m.request == static_cast<uint32_t>(Request::set_mem_table) && m.size >= 8) {
    const uint32_t n = m.as<uint32_t>();
    if (n == 0 || n > kMaxMemRegions)
      return Status(Errc::invalid_argument, fmt::format("SET_MEM_TABLE with {} regions (1 to {})", n, kMaxMemRegions));
    want = 8 + n * static_cast<uint32_t>(sizeof(MemRegionWire));
  }
  if ((m.request == static_cast<uint32_t>(Request::get_config) ||
       m.request == static_cast<uint32_t>(Request::set_config)) &&
      m.size >= kConfigHeaderSize) {
    const ConfigWire c = m.as<ConfigWire>();
    if (c.size > kMaxConfigSize)
      return Status(Errc::invalid_argument, fmt::format("{} of {} bytes (at most {})", name, c.size, kMaxConfigSize));
    want = static_cast<uint32_t>(kConfigHeaderSize) + c.size;
  }
  // Fixed-size payloads may come padded (QEMU sends its union's size for some), never short.
  const bool exact = shape.fds == Shape::per_region || m.request == static_cast<uint32_t>(Request::get_config) ||
                     m.request == static_cast<uint32_t>(Request::set_config);
  if (exact ? m.size != want : m.size < want || m.size > want + 8)
    return Status(Errc::invalid_argument, fmt::format("{} with a {}-byte payload ({} expected)", name, m.size, want));
  uint32_t fds = 0;
  switch (shape.fds) {
    case Shape::none: break;
    case Shape::one: fds = 1; break;
    case Shape::one_unless_nofd: fds = (m.u64() & kVringNoFd) != 0 ? 0 : 1; break;
    case Shape::per_region: fds = m.as<uint32_t>(); break;
  }
  if (m.nfds != fds)
    return Status(Errc::invalid_argument, fmt::format("{} came with {} descriptors ({} expected)", name, m.nfds, fds));
  return Status::Ok();
}

Result<bool> MessageReader::read(int fd, Message* m) {
  // Bounded: at most one recvmsg for the header and one for the payload per call; what is
  // left is reported readable again (level-triggered).
  for (int pass = 0; pass < 2; ++pass) {
    if (have_ == 0) {
      m->size = 0;
      for (uint32_t i = 0; i < m->nfds; ++i) m->fds[i].reset();
      m->nfds = 0;
    }
    const bool in_header = have_ < kHeaderSize;
    iovec iov = in_header ? iovec{header_ + have_, kHeaderSize - have_}
                          : iovec{m->payload + (have_ - kHeaderSize), kHeaderSize + m->size - have_};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
      return errno_status(errno, "vhost-user socket recvmsg");
    }
    SLUICE_RETURN_IF_ERROR(adopt_fds(msg, m));
    if (n == 0) return Status(Errc::aborted, "the front end closed the socket");
    have_ += static_cast<size_t>(n);
    if (in_header) {
      if (have_ < kHeaderSize) return false;
      std::memcpy(&m->request, header_, 4);
      std::memcpy(&m->flags, header_ + 4, 4);
      std::memcpy(&m->size, header_ + 8, 4);
      if (m->size > kMaxPayload)
        return Status(Errc::invalid_argument, fmt::format("{} with a {}-byte payload (at most {})",
                                                          request_name(m->request), m->size, kMaxPayload));
    }
    if (have_ == kHeaderSize + m->size) {
      have_ = 0;
      return true;
    }
  }
  return false;
}

Status MessageReader::adopt_fds(msghdr& msg, Message* m) {
  // Every descriptor is owned before anything is judged, so none leaks.
  bool too_many = false;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      UniqueFd owned(got);
      if (m->nfds < kMaxFds)
        m->fds[m->nfds++] = std::move(owned);
      else
        too_many = true;
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0 || too_many)
    return Status(Errc::invalid_argument, fmt::format("a message came with more than {} descriptors", kMaxFds));
  return Status::Ok();
}

Status write_message(int fd, Message& m, int send_fd) {
  m.flags = (m.flags & ~(kFlagNeedReply | kVersionMask)) | kVersion | kFlagReply;
  uint8_t header[kHeaderSize];
  std::memcpy(header, &m.request, 4);
  std::memcpy(header + 4, &m.flags, 4);
  std::memcpy(header + 8, &m.size, 4);
  iovec iov[2] = {{header, kHeaderSize}, {m.payload, m.size}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))]{};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  if (send_fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &send_fd, sizeof send_fd);
  }
  const size_t total = kHeaderSize + m.size;
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno_status(errno, fmt::format("vhost-user reply to {}", request_name(m.request)));
  if (static_cast<size_t>(n) != total)
    return Status(Errc::io_error, fmt::format("vhost-user reply to {}: {} of {} bytes sent", request_name(m.request), n, total));
  return Status::Ok();
}

}  // namespace sluice::vhost
