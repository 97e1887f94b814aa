// What every command handler shares: the data direction and the copy into the host's buffer.
#include <algorithm>
#include <cstring>

#include "target/nvmf/nvmf_impl.h"

namespace sluice::nvmf {

Xfer transfer_direction(const sp::Sqe& sqe) {
  // Bits 1:0 of the opcode (of FCTYPE for a fabrics command) give the direction.
  const uint8_t code = sqe.opc == sp::kFabricsOpcode ? sp::fabrics_type(sqe) : sqe.opc;
  switch (code & 3) {
    case 1: return Xfer::host_to_controller;
    case 2: return Xfer::controller_to_host;
    case 3: return Xfer::bidirectional;
    default: return Xfer::none;
  }
}

void copy_to_host(Request* req, const void* src, size_t n) {
  if (req->data == nullptr) return;
  std::memcpy(req->data, src, std::min<size_t>(n, req->length));
}

}  // namespace sluice::nvmf
