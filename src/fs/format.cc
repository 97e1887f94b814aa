#include "fs/format.h"

#include <cstring>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/crc32c.h"

namespace sluice::fs {
namespace {

constexpr uint32_t kMarkerMagic = 0x4d544653;  // "SFTM"

}  // namespace

std::string encode_identity() {
  std::string s(kFsMagic, 8);
  Encoder e(s);
  e.put<uint32_t>(kFormatVersion);
  e.put<uint32_t>(0);  // flags
  return s;
}

Status check_identity(std::string_view value) {
  if (value.size() < 12 || std::memcmp(value.data(), kFsMagic, 8) != 0)
    return Status(Errc::wrong_format, "not a SluiceFS image (the root has no SluiceFS identity)");
  const uint32_t version = get_le<uint32_t>(value.data() + 8);
  if (version > kFormatVersion)
    return Status(Errc::not_supported,
                  fmt::format("SluiceFS format version {} is newer than this Sluice supports ({})", version,
                              kFormatVersion));
  if (version == 0) return Status(Errc::corrupt, "SluiceFS identity with version 0");
  return Status::Ok();
}

std::string encode_entry(const Entry& en) {
  std::string s;
  Encoder e(s);
  e.put<uint8_t>(static_cast<uint8_t>(en.kind));
  e.put<uint64_t>(en.parent);
  e.bytes(en.name);
  return s;
}

Result<Entry> decode_entry(std::string_view value) {
  Decoder d(value);
  Entry en;
  const uint8_t kind = d.get<uint8_t>();
  en.parent = d.get<uint64_t>();
  if (d.failed() || (kind != 1 && kind != 2)) return Status(Errc::corrupt, "malformed directory entry");
  en.kind = static_cast<Kind>(kind);
  en.name = std::string(d.bytes(d.remaining()));
  return en;
}

std::string encode_state(const InodeState& st) {
  std::string s;
  Encoder e(s);
  e.put<uint64_t>(st.size);
  e.put<uint64_t>(st.gen);
  e.put<uint64_t>(static_cast<uint64_t>(st.mtime_ns));
  e.put<uint32_t>(st.flags);
  return s;
}

Result<InodeState> decode_state(std::string_view value) {
  Decoder d(value);
  InodeState st;
  st.size = d.get<uint64_t>();
  st.gen = d.get<uint64_t>();
  st.mtime_ns = static_cast<int64_t>(d.get<uint64_t>());
  st.flags = d.get<uint32_t>();
  if (d.failed()) return Status(Errc::corrupt, "malformed inode state");
  return st;
}

void encode_marker(const TailMarker& m, char* p) {
  std::memset(p, 0, kMarkerSize);
  put_le<uint32_t>(p, kMarkerMagic);
  put_le<uint64_t>(p + 8, m.blob);
  put_le<uint64_t>(p + 16, m.length);
  put_le<uint64_t>(p + 24, m.base);
  put_le<uint64_t>(p + 32, m.gen);
  put_le<uint32_t>(p + 40, m.data_crc);
  put_le<uint32_t>(p + 4, crc32c(p + 8, kMarkerSize - 8));
}

std::optional<TailMarker> decode_marker(const char* p) {
  if (get_le<uint32_t>(p) != kMarkerMagic) return std::nullopt;
  if (get_le<uint32_t>(p + 4) != crc32c(p + 8, kMarkerSize - 8)) return std::nullopt;
  TailMarker m;
  m.blob = get_le<uint64_t>(p + 8);
  m.length = get_le<uint64_t>(p + 16);
  m.base = get_le<uint64_t>(p + 24);
  m.gen = get_le<uint64_t>(p + 32);
  m.data_crc = get_le<uint32_t>(p + 40);
  if (m.base > m.length) return std::nullopt;
  if (get_le<uint32_t>(p + 44) != 0) return std::nullopt;  // reserved: a later version's marker
  return m;
}

}  // namespace sluice::fs
