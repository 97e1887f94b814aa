// vhost-user messages (QEMU's docs/interop/vhost-user.rst): the wire format, the payload each
// request must carry, and reading one message, file descriptors included, from the socket.
//
// A message is a 12-byte header (request, flags, size) and `size` payload bytes; descriptors
// ride along as SCM_RIGHTS. Everything here is untrusted: read_message() bounds the payload
// (kMaxPayload) and the descriptors (kMaxFds, the rest closed), and check_message() refuses a
// payload of the wrong size for its request or the wrong number of descriptors, before any
// field is used. Nothing here keeps a descriptor it was not asked to: a Message owns its fds.
#pragma once

#include <linux/vhost_types.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "base/status.h"
#include "base/unique_fd.h"

namespace sluice::vhost {

enum class Request : uint32_t {
  get_features = 1,
  set_features = 2,
  set_owner = 3,
  reset_owner = 4,
  set_mem_table = 5,
  set_log_base = 6,
  set_log_fd = 7,
  set_vring_num = 8,
  set_vring_addr = 9,
  set_vring_base = 10,
  get_vring_base = 11,
  set_vring_kick = 12,
  set_vring_call = 13,
  set_vring_err = 14,
  get_protocol_features = 15,
  set_protocol_features = 16,
  get_queue_num = 17,
  set_vring_enable = 18,
  get_config = 24,
  set_config = 25,
  get_inflight_fd = 31,
  set_inflight_fd = 32,
  get_max_mem_slots = 36,
};
std::string_view request_name(uint32_t request);

// Header flags.
inline constexpr uint32_t kVersion = 0x1;
inline constexpr uint32_t kVersionMask = 0x3;
inline constexpr uint32_t kFlagReply = 1u << 2;
inline constexpr uint32_t kFlagNeedReply = 1u << 3;

// Protocol feature bits (GET/SET_PROTOCOL_FEATURES).
inline constexpr int kProtocolMq = 0;
inline constexpr int kProtocolReplyAck = 3;
inline constexpr int kProtocolConfig = 9;
inline constexpr int kProtocolInflightShmfd = 12;
// Virtio feature bit 30, reused by vhost-user to say protocol features exist.
inline constexpr int kFeatureProtocolFeatures = 30;

// SET_VRING_KICK/CALL/ERR: the low byte is the ring, this bit says "no descriptor" (polling).
inline constexpr uint64_t kVringIndexMask = 0xff;
inline constexpr uint64_t kVringNoFd = 1u << 8;

inline constexpr size_t kHeaderSize = 12;
// Well above the largest payload a request defines (a GET_CONFIG of 256 bytes, a memory
// table of 8 regions): anything larger is refused.
inline constexpr size_t kMaxPayload = 512;
inline constexpr size_t kMaxFds = 8;
inline constexpr size_t kMaxConfigSize = 256;
inline constexpr size_t kMaxMemRegions = 8;

// Payload layouts (native byte order).
struct MemRegionWire {
  uint64_t guest_addr, size, user_addr, mmap_offset;
};
struct MemTableWire {
  uint32_t num_regions, padding;
  MemRegionWire regions[kMaxMemRegions];
};
struct ConfigWire {
  uint32_t offset, size, flags;
  uint8_t payload[kMaxConfigSize];
};
inline constexpr size_t kConfigHeaderSize = 12;
struct InflightWire {
  uint64_t mmap_size, mmap_offset;
  uint16_t num_queues, queue_size;
};
inline constexpr size_t kInflightWireSize = 20;  // QEMU sends sizeof (24) with padding

struct Message {
  uint32_t request = 0;
  uint32_t flags = 0;
  uint32_t size = 0;
  alignas(8) uint8_t payload[kMaxPayload]{};
  UniqueFd fds[kMaxFds];
  uint32_t nfds = 0;

  // The payload as a wire struct (bytes beyond `size` read as zero).
  template <typename T>
  T as() const {
    T t{};
    std::memcpy(&t, payload, size < sizeof(T) ? size : sizeof(T));
    return t;
  }
  uint64_t u64() const { return as<uint64_t>(); }
  void set(const void* p, size_t len) {
    size = static_cast<uint32_t>(len);
    std::memcpy(payload, p, len);
  }
  bool need_reply() const { return (flags & kFlagNeedReply) != 0; }
};

// Refuses a message whose version, payload size or descriptor count does not fit its
// request; unknown requests too. The message says what was wrong.
Status check_message(const Message& m);

// Reads messages from a non-blocking stream socket, a piece at a time.
class MessageReader {
 public:
  // Reads what has arrived. true: *m holds one whole message (and the reader starts the
  // next); false: more is needed (the socket would block). Errc::aborted when the peer closed
  // the socket, another error for a malformed stream (oversized payload, too many or
  // truncated descriptors). *m must be the same object until a message is whole.
  Result<bool> read(int fd, Message* m);

 private:
  static Status adopt_fds(msghdr& msg, Message* m);

  uint8_t header_[kHeaderSize]{};
  size_t have_ = 0;  // header + payload bytes of the current message so far
};

// Sends a reply (kFlagReply set here) with at most one descriptor. Replies are small and the
// front end waits for them, so a socket that would block is an error.
Status write_message(int fd, Message& m, int send_fd = -1);

}  // namespace sluice::vhost
