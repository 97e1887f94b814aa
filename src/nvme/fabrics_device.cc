// FabricsDevice: registers as fabrics properties, the admin connection, and opening I/O
// queue connections; TcpTarget's text form.
#include "nvme/fabrics_device.h"

#include <unistd.h>

#include <fstream>

#include <fmt/format.h>

#include "base/log.h"
#include "base/number.h"

namespace sluice::nvme {

Result<net::ListenAddress> parse_tcp_address(std::string_view where, uint16_t default_port) {
  std::string_view host = where, port;
  if (!where.empty() && where.front() == '[') {  // [IPv6]:PORT
    const size_t close = where.find(']');
    if (close == std::string_view::npos)
      return Status(Errc::invalid_argument, fmt::format("'{}': unclosed '['", where));
    host = where.substr(1, close - 1);
    std::string_view after = where.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return Status(Errc::invalid_argument, fmt::format("'{}': ':' expected after ']'", where));
      port = after.substr(1);
    }
  } else if (const size_t colon = where.rfind(':'); colon != std::string_view::npos) {
    host = where.substr(0, colon);
    port = where.substr(colon + 1);
  }
  uint64_t number = default_port;
  if (!port.empty() || where.ends_with(':')) {
    auto p = parse_uint(port, 1, 65535);
    if (!p.ok()) return Status(Errc::invalid_argument, fmt::format("'{}' is not a TCP port", port));
    number = *p;
  }
  if (host.empty()) return Status(Errc::invalid_argument, fmt::format("'{}' names no address", where));
  return net::ListenAddress::tcp_address(std::string(host), static_cast<uint16_t>(number));
}

Result<TcpTarget> TcpTarget::parse(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash + 1 == text.size())
    return Status(Errc::invalid_argument, fmt::format("'{}' is not ADDR:PORT/SUBNQN", text));
  auto address = parse_tcp_address(text.substr(0, slash));
  if (!address.ok()) return address.status();
  TcpTarget t;
  t.address = std::move(address.value());
  t.subnqn = std::string(text.substr(slash + 1));
  return t;
}

std::string TcpTarget::to_string() const { return fmt::format("{}/{}", address.to_string(), subnqn); }

std::string default_host_nqn() {
  std::ifstream f("/etc/nvme/hostnqn");
  std::string line;
  if (f && std::getline(f, line) && line.rfind("nqn.", 0) == 0) return line;
  char host[256] = "localhost";
  (void)gethostname(host, sizeof(host) - 1);
  return fmt::format("nqn.2026-12.io.sluice:host:{}", host);
}

Result<std::unique_ptr<FabricsDevice>> FabricsDevice::connect(const TcpTarget& target, uint32_t admin_entries,
                                                              uint64_t timeout_ms) {
  tcp::QueueOptions o;
  o.header_digest = target.header_digest;
  o.data_digest = target.data_digest;
  o.connect_timeout_ms = std::min<uint64_t>(timeout_ms, 10000);
  o.command_timeout_ms = timeout_ms;
  auto q = tcp::HostQueue::open(target.address, admin_entries, o);
  if (!q.ok()) return q.status();
  TcpTarget t = target;
  if (t.hostnqn.empty()) t.hostnqn = default_host_nqn();
  auto cntlid = (*q)->connect(0, t.subnqn, t.hostnqn, spec::connect::kNewController, 0);
  if (!cntlid.ok())
    return Status(cntlid.status().code(), fmt::format("{}: {}", t.to_string(), cntlid.status().message()));
  return std::unique_ptr<FabricsDevice>(new FabricsDevice(std::move(t), std::move(q.value()), *cntlid, timeout_ms));
}

FabricsDevice::FabricsDevice(TcpTarget target, std::unique_ptr<tcp::HostQueue> admin, uint16_t cntlid,
                             uint64_t timeout_ms)
    : target_(std::move(target)),
      name_(target_.to_string()),
      admin_(std::move(admin)),
      cntlid_(cntlid),
      timeout_ms_(timeout_ms) {}

Result<uint64_t> FabricsDevice::get_property(uint32_t offset, bool wide) {
  spec::Sqe sqe{};
  sqe.opc = spec::kFabricsOpcode;
  sqe.nsid = spec::kFctypePropertyGet;
  sqe.cdw10 = wide ? spec::kPropertySize8 : 0;
  sqe.cdw11 = offset;
  auto c = admin_->execute(sqe, nullptr, 0);
  if (!c.ok()) return c.status();
  SLUICE_RETURN_IF_ERROR(completion_status(*c, fmt::format("Property Get {:#x}", offset)));
  return uint64_t{c->dw1} << 32 | c->dw0;
}

uint32_t FabricsDevice::read32(uint32_t offset) {
  auto v = get_property(offset, false);
  if (!v.ok()) {
    log::warn("nvme {}: {}", name_, v.status().to_string());
    return ~uint32_t{0};
  }
  return static_cast<uint32_t>(*v);
}

uint64_t FabricsDevice::read64(uint32_t offset) {
  auto v = get_property(offset, true);
  if (!v.ok()) {
    log::warn("nvme {}: {}", name_, v.status().to_string());
    return ~uint64_t{0};
  }
  return *v;
}

void FabricsDevice::write32(uint32_t offset, uint32_t value) {
  spec::Sqe sqe{};
  sqe.opc = spec::kFabricsOpcode;
  sqe.nsid = spec::kFctypePropertySet;
  sqe.cdw11 = offset;
  sqe.cdw12 = value;
  auto c = admin_->execute(sqe, nullptr, 0);
  Status st = c.ok() ? completion_status(*c, fmt::format("Property Set {:#x}", offset)) : c.status();
  // The controller code reads the status register next and times out on its own.
  if (!st.ok()) log::warn("nvme {}: {}", name_, st.to_string());
}

Result<std::unique_ptr<tcp::HostQueue>> FabricsDevice::start_io_queue(uint32_t entries, uint32_t in_capsule_bytes,
                                                                      uint32_t max_transfer_bytes) {
  tcp::QueueOptions o;
  o.header_digest = target_.header_digest;
  o.data_digest = target_.data_digest;
  o.connect_timeout_ms = std::min<uint64_t>(timeout_ms_, 10000);
  o.command_timeout_ms = 0;  // the I/O queue above keeps its own timeouts (abort, then reset)
  o.in_capsule_bytes = in_capsule_bytes;
  o.max_transfer_bytes = max_transfer_bytes;
  o.disable_sq_flow_control = true;  // completions need no SQ Head: the queue never overfills
  return tcp::HostQueue::start(target_.address, entries, o);
}

}  // namespace sluice::nvme
