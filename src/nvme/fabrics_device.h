// A controller reached over NVMe/TCP, behind the same PciDevice interface the controller code
// uses for PCIe: its registers are the fabrics properties (Property Get/Set on the admin
// queue), it needs no DMA mapping (data goes through sockets from any memory), and its
// queues are connections. The admin queue's connection lives here, opened and Connected
// (qid 0, a new association) before the controller code reads the first register.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/net.h"
#include "nvme/pci_device.h"
#include "nvme/tcp_queue.h"

namespace sluice::nvme {

// Where a fabrics controller is and who asks.
struct TcpTarget {
  net::ListenAddress address;  // tcp_address("127.0.0.1", 4420)
  std::string subnqn;
  std::string hostnqn;  // empty: default_host_nqn()
  bool header_digest = false;
  bool data_digest = false;
  // Parses "ADDR:PORT/SUBNQN" ("[::1]:4420/nqn..." for IPv6). PORT defaults to 4420 when
  // ":PORT" is left out.
  static Result<TcpTarget> parse(std::string_view text);
  // "127.0.0.1:4420/nqn.2026-12.io.sluice:disk"
  std::string to_string() const;
};

// "127.0.0.1", "127.0.0.1:4421", "[::1]:4420" (an IPv6 address goes in brackets); no port:
// `default_port` (4420, the NVMe/TCP port IANA assigned).
Result<net::ListenAddress> parse_tcp_address(std::string_view text, uint16_t default_port = 4420);

// This machine's host NQN: /etc/nvme/hostnqn when nvme-cli made one, else one derived from
// the host name.
std::string default_host_nqn();

class FabricsDevice final : public PciDevice {
 public:
  // TCP, ICReq/ICResp, then Connect for the admin queue.
  static Result<std::unique_ptr<FabricsDevice>> connect(const TcpTarget& target, uint32_t admin_entries,
                                                        uint64_t timeout_ms);

  const std::string& bdf() const override { return name_; }
  std::string_view kind() const override { return "tcp"; }
  // A property that cannot be read reads as all ones, like a PCIe function that is gone.
  uint32_t read32(uint32_t offset) override;
  void write32(uint32_t offset, uint32_t value) override;
  uint64_t read64(uint32_t offset) override;
  Status enable_dma() override { return Status::Ok(); }
  // Nothing is addressed by the controller: data travels in PDUs. Any address goes.
  uint64_t translate(const void* p) const override { return reinterpret_cast<uint64_t>(p); }
  FabricsDevice* fabrics() override { return this; }

  tcp::HostQueue& admin() { return *admin_; }
  // A new connection for I/O queue `qid` of this association, started but not waited for:
  // the caller polls it and sends Connect (submit_connect with target() and cntlid()).
  Result<std::unique_ptr<tcp::HostQueue>> start_io_queue(uint32_t entries, uint32_t in_capsule_bytes,
                                                         uint32_t max_transfer_bytes);
  const TcpTarget& target() const { return target_; }
  uint16_t cntlid() const { return cntlid_; }

 private:
  FabricsDevice(TcpTarget target, std::unique_ptr<tcp::HostQueue> admin, uint16_t cntlid, uint64_t timeout_ms);
  Result<uint64_t> get_property(uint32_t offset, bool wide);

  TcpTarget target_;
  std::string name_;
  std::unique_ptr<tcp::HostQueue> admin_;
  uint16_t cntlid_;
  uint64_t timeout_ms_;
};

}  // namespace sluice::nvme
