// discover(): the Discovery log page read over one short admin-only association.
#include "nvme/discovery.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "base/clock.h"
#include "nvme/fabrics_device.h"
#include "nvme/nvme.h"

namespace sluice::nvme {
namespace {

namespace d = spec::discovery;

std::string ascii(const uint8_t* p, size_t n) {
  std::string s(reinterpret_cast<const char*>(p), n);
  s.erase(std::find(s.begin(), s.end(), '\0'), s.end());
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

Result<Completion> get_log(tcp::HostQueue& q, std::vector<uint8_t>& buf, uint64_t offset) {
  spec::Sqe sqe{};
  sqe.opc = spec::kAdminGetLogPage;
  const uint32_t dwords = static_cast<uint32_t>(buf.size() / 4 - 1);
  sqe.cdw10 = spec::kLogDiscovery | (dwords & 0xffff) << 16;
  sqe.cdw11 = dwords >> 16;
  sqe.cdw12 = static_cast<uint32_t>(offset);
  sqe.cdw13 = static_cast<uint32_t>(offset >> 32);
  auto c = q.execute(sqe, buf.data(), buf.size());
  if (!c.ok()) return c.status();
  SLUICE_RETURN_IF_ERROR(completion_status(*c, "Get Log Page (Discovery)"));
  return c;
}

}  // namespace

Result<std::vector<DiscoveryEntry>> discover(const net::ListenAddress& address, const std::string& hostnqn,
                                             uint64_t timeout_ms) {
  TcpTarget target;
  target.address = address;
  target.subnqn = spec::kDiscoveryNqn;
  target.hostnqn = hostnqn;
  auto dev = FabricsDevice::connect(target, 32, timeout_ms);
  if (!dev.ok()) return dev.status();
  FabricsDevice& f = **dev;
  // Enabled like any controller (the discovery controller takes no queues but the admin one).
  f.write32(spec::kRegCc, spec::kCcEnable | spec::cc_iosqes(6) | spec::cc_iocqes(4));
  const uint64_t deadline = clock::now_ns() + timeout_ms * 1000000;
  for (;;) {
    const uint32_t csts = f.read32(spec::kRegCsts);
    if (csts != ~uint32_t{0} && (csts & spec::kCstsRdy)) break;
    if (csts == ~uint32_t{0} || (csts & spec::kCstsCfs) || clock::now_ns() > deadline)
      return Status(Errc::io_error,
                    fmt::format("{}: the discovery controller did not become ready", target.to_string()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::vector<uint8_t> header(d::kHeaderSize);
  auto c = get_log(f.admin(), header, 0);
  if (!c.ok()) return Status(c.status().code(), fmt::format("{}: {}", target.to_string(), c.status().message()));
  const uint64_t records = std::min<uint64_t>(spec::get<uint64_t>(header.data(), d::kNumrec), 1024);
  std::vector<DiscoveryEntry> out;
  if (records == 0) return out;
  std::vector<uint8_t> entries(records * d::kEntrySize);
  c = get_log(f.admin(), entries, d::kHeaderSize);
  if (!c.ok()) return Status(c.status().code(), fmt::format("{}: {}", target.to_string(), c.status().message()));
  for (uint64_t i = 0; i < records; ++i) {
    const uint8_t* e = entries.data() + i * d::kEntrySize;
    DiscoveryEntry x;
    x.trtype = e[d::kTrtype];
    x.adrfam = e[d::kAdrfam];
    x.subtype = e[d::kSubtype];
    x.portid = spec::get<uint16_t>(e, d::kPortid);
    x.trsvcid = ascii(e + d::kTrsvcid, d::kTrsvcidSize);
    x.traddr = ascii(e + d::kTraddr, d::kTraddrSize);
    x.subnqn = ascii(e + d::kSubnqn, d::kSubnqnSize);
    out.push_back(std::move(x));
  }
  return out;
}

}  // namespace sluice::nvme
