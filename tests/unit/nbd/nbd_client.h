// A small blocking NBD client for the tests: connect, handshake, requests, replies. Every
// socket call is bounded by a receive/send timeout, so a server that hangs fails the test.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "loopback_socket.h"
#include "target/nbd/protocol.h"

namespace sluice::nbd::testing {

namespace p = sluice::nbd::proto;

class Client {
 public:
  Client() = default;
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connect_unix(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    if (fd_ < 0) return false;
    sluice::testing::bound_socket_calls(fd_);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  bool connect_tcp(uint16_t port) {
    fd_ = sluice::testing::connect_loopback(port);
    return fd_ >= 0;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }

  bool send_all(const void* data, size_t len) { return sluice::testing::send_all(fd_, data, len); }
  bool recv_all(void* data, size_t len) { return sluice::testing::recv_all(fd_, data, len); }
  // True when the server closed the connection (EOF) within the receive timeout.
  bool sees_eof() { return sluice::testing::sees_eof(fd_); }

  // Greeting and client flags.
  bool greet(uint32_t client_flags = p::kClientFixedNewstyle | p::kClientNoZeroes) {
    uint8_t g[18];
    if (!recv_all(g, sizeof(g))) return false;
    if (p::get64(g) != p::kNbdMagic || p::get64(g + 8) != p::kOptMagic) return false;
    uint8_t f[4];
    p::put32(f, client_flags);
    return send_all(f, 4);
  }
  bool send_option(uint32_t opt, const std::vector<uint8_t>& data) {
    std::vector<uint8_t> b(16 + data.size());
    p::put64(b.data(), p::kOptMagic);
    p::put32(b.data() + 8, opt);
    p::put32(b.data() + 12, static_cast<uint32_t>(data.size()));
    if (!data.empty()) std::memcpy(b.data() + 16, data.data(), data.size());
    return send_all(b.data(), b.size());
  }
  struct OptReply {
    uint32_t opt = 0, type = 0;
    std::vector<uint8_t> data;
  };
  std::optional<OptReply> read_option_reply() {
    uint8_t h[20];
    if (!recv_all(h, 20) || p::get64(h) != p::kRepMagic) return std::nullopt;
    OptReply r{p::get32(h + 8), p::get32(h + 12), {}};
    r.data.resize(p::get32(h + 16));
    if (!r.data.empty() && !recv_all(r.data.data(), r.data.size())) return std::nullopt;
    return r;
  }
  static std::vector<uint8_t> go_data(const std::string& name, std::vector<uint16_t> infos = {}) {
    std::vector<uint8_t> d(4 + name.size() + 2 + 2 * infos.size());
    p::put32(d.data(), static_cast<uint32_t>(name.size()));
    std::memcpy(d.data() + 4, name.data(), name.size());
    p::put16(d.data() + 4 + name.size(), static_cast<uint16_t>(infos.size()));
    for (size_t i = 0; i < infos.size(); ++i) p::put16(d.data() + 6 + name.size() + 2 * i, infos[i]);
    return d;
  }
  // GO (or INFO): the final reply type; size and flags from NBD_INFO_EXPORT.
  uint32_t go(const std::string& name, uint32_t opt = p::kOptGo) {
    if (!send_option(opt, go_data(name))) return 0;
    for (int i = 0; i < 16; ++i) {
      auto r = read_option_reply();
      if (!r) return 0;
      if (r->type == p::kRepInfo && r->data.size() == 12 && p::get16(r->data.data()) == p::kInfoExport) {
        size = p::get64(r->data.data() + 2);
        tx_flags = p::get16(r->data.data() + 10);
      }
      if (r->type != p::kRepInfo) return r->type;
    }
    return 0;
  }
  bool structured_replies() {
    if (!send_option(p::kOptStructuredReply, {})) return false;
    auto r = read_option_reply();
    structured = r && r->type == p::kRepAck;
    return structured;
  }
  // SET_META_CONTEXT on `name` with one query; true when the server selected it.
  bool set_meta_context(const std::string& name, const std::string& query) {
    std::vector<uint8_t> d(12 + name.size() + query.size());
    p::put32(d.data(), static_cast<uint32_t>(name.size()));
    std::memcpy(d.data() + 4, name.data(), name.size());
    p::put32(d.data() + 4 + name.size(), 1);
    p::put32(d.data() + 8 + name.size(), static_cast<uint32_t>(query.size()));
    std::memcpy(d.data() + 12 + name.size(), query.data(), query.size());
    if (!send_option(p::kOptSetMetaContext, d)) return false;
    bool selected = false;
    for (int i = 0; i < 4; ++i) {
      auto r = read_option_reply();
      if (!r) return false;
      if (r->type == p::kRepMetaContext) selected = true;
      if (r->type != p::kRepMetaContext) return selected && r->type == p::kRepAck;
    }
    return false;
  }
  // BLOCK_STATUS (structured replies): the extents of the one chunk, or the error.
  struct StatusReply {
    uint32_t error = 0;
    uint32_t context = 0;
    std::vector<p::Extent> extents;
  };
  std::optional<StatusReply> block_status(uint64_t offset, uint32_t length, uint16_t flags = 0) {
    const uint64_t cookie = ++cookie_;
    if (!send_request(p::kCmdBlockStatus, offset, length, cookie, flags)) return std::nullopt;
    uint8_t h[p::kStructuredReplySize];
    if (!recv_all(h, sizeof(h)) || p::get32(h) != p::kStructuredReplyMagic || p::get64(h + 8) != cookie ||
        (p::get16(h + 4) & p::kReplyFlagDone) == 0) {
      return std::nullopt;
    }
    std::vector<uint8_t> body(p::get32(h + 16));
    if (!body.empty() && !recv_all(body.data(), body.size())) return std::nullopt;
    StatusReply st;
    if (p::get16(h + 6) == p::kReplyTypeError) {
      if (body.size() < 6) return std::nullopt;
      st.error = p::get32(body.data());
      return st;
    }
    if (p::get16(h + 6) != p::kReplyTypeBlockStatus || body.size() < 12 || (body.size() - 4) % 8 != 0) {
      return std::nullopt;
    }
    st.context = p::get32(body.data());
    for (size_t at = 4; at < body.size(); at += 8) {
      st.extents.push_back({p::get32(body.data() + at), p::get32(body.data() + at + 4)});
    }
    return st;
  }
  // Connect + greet + GO on `name`.
  bool open_unix(const std::string& path, const std::string& name) {
    return connect_unix(path) && greet() && go(name) == p::kRepAck;
  }

  bool send_request(uint16_t type, uint64_t offset, uint32_t length, uint64_t cookie, uint16_t flags = 0,
                    const void* payload = nullptr) {
    uint8_t h[p::kRequestSize];
    p::put32(h, p::kRequestMagic);
    p::put16(h + 4, flags);
    p::put16(h + 6, type);
    p::put64(h + 8, cookie);
    p::put64(h + 16, offset);
    p::put32(h + 24, length);
    if (!send_all(h, sizeof(h))) return false;
    return payload == nullptr || send_all(payload, length);
  }
  struct Reply {
    uint32_t error = 0;
    uint64_t cookie = 0;
  };
  // A simple reply (no data).
  std::optional<Reply> read_reply() {
    uint8_t h[p::kSimpleReplySize];
    if (!recv_all(h, sizeof(h)) || p::get32(h) != p::kSimpleReplyMagic) return std::nullopt;
    return Reply{p::get32(h + 4), p::get64(h + 8)};
  }
  // One request, its reply; data read into `out` for a successful READ.
  uint32_t io(uint16_t type, uint64_t offset, uint32_t length, void* data = nullptr, uint16_t flags = 0) {
    const uint64_t cookie = ++cookie_;
    if (!send_request(type, offset, length, cookie, flags, type == p::kCmdWrite ? data : nullptr)) return ~0u;
    if (structured && type == p::kCmdRead) {
      uint8_t h[p::kStructuredReplySize];
      if (!recv_all(h, sizeof(h)) || p::get32(h) != p::kStructuredReplyMagic || p::get64(h + 8) != cookie) return ~0u;
      const uint16_t t = p::get16(h + 6);
      const uint32_t len = p::get32(h + 16);
      std::vector<uint8_t> body(len);
      if (len > 0 && t != p::kReplyTypeOffsetData && !recv_all(body.data(), len)) return ~0u;
      if (t == p::kReplyTypeError) return p::get32(body.data());
      uint8_t off[8];
      if (!recv_all(off, 8) || p::get64(off) != offset || len != length + 8) return ~0u;
      return recv_all(data, length) ? 0 : ~0u;
    }
    auto r = read_reply();
    if (!r || r->cookie != cookie) return ~0u;
    if (r->error == 0 && type == p::kCmdRead && !recv_all(data, length)) return ~0u;
    return r->error;
  }

  uint64_t size = 0;
  uint16_t tx_flags = 0;
  bool structured = false;

 private:
  int fd_ = -1;
  uint64_t cookie_ = 0;
};

}  // namespace sluice::nbd::testing
