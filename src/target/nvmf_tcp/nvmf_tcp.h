// The NVMe/TCP transport of the NVMe-oF target: a listener on the reactors and, per
// accepted connection, one NVMe-oF queue (src/target/nvmf's QueuePair) fed by the PDU codec
// (src/nvme/tcp_pdu*.h) over a src/net Connection.
//
//   nvmf::Target target(...);                       // subsystems, namespaces (nvmf.h)
//   auto t = nvmf::tcp::Transport::listen(target, net::ListenAddress::tcp_address("127.0.0.1", 4420));
//   ... hosts connect: `nvme connect -t tcp -a 127.0.0.1 -s 4420 -n NQN` ...
//   t->reset();                                     // stops listening, closes every connection
//
// On the wire (docs/nvmf.md, "The TCP transport"): ICReq/ICResp with header and data digests
// as the host asks, command capsules with in-capsule data up to the target's
// in_capsule_data_bytes, one R2T per command whose data does not come in the capsule (the
// host splits it into H2CData PDUs of at most MAXH2CDATA), read data in one C2HData PDU,
// then the CapsuleResp. A PDU the codec refuses gets a C2HTermReq and closes that
// connection only. Data goes between the socket and the command's DMA buffer without a copy
// for large transfers (small ones pass through a per-connection staging buffer).
#pragma once

#include <cstdint>
#include <memory>

#include "base/status.h"
#include "net/net.h"
#include "target/nvmf/nvmf.h"

namespace sluice::nvmf::tcp {

struct TransportOptions {
  // MAXH2CDATA: the most data one H2CData PDU may carry (a multiple of 4, >= 4096).
  uint32_t max_h2c_data = 128 << 10;
  // The reactor that accepts; connections go round-robin over all reactors.
  uint32_t accept_reactor = 0;
};

class Transport {
 public:
  // From a control thread (not a reactor): binds now, then accepts on the accept reactor.
  // `target` must outlive the Transport.
  static Result<std::unique_ptr<Transport>> listen(Target& target, const net::ListenAddress& address,
                                                   TransportOptions options = {});
  // Stops accepting, closes every connection it accepted (their associations end) and waits
  // for them to go, bounded (5 s; a connection still going then is logged, not freed).
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // The address bound (an ephemeral port filled in).
  const net::ListenAddress& address() const;
  // Connections of this transport still open or closing.
  uint64_t live_connections() const;

  struct Impl;  // (internal)

 private:
  explicit Transport(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::nvmf::tcp
