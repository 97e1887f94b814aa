// Helpers shared by the iSCSI codec tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "target/iscsi/pdu.h"

namespace sluice::iscsi::testing {

using Bytes = std::vector<uint8_t>;

inline uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint64_t be64(const uint8_t* p) { return uint64_t{be32(p)} << 32 | be32(p + 4); }

inline Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(seed + i * 7);
  return b;
}
inline Bytes text_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

inline Bytes pdu_bytes(const TxParams& tx, const Header& h, const Bytes& data = {}, const Ahs* ahs = nullptr) {
  Bytes out;
  append_pdu(out, tx, h, data, ahs);
  return out;
}

}  // namespace sluice::iscsi::testing
