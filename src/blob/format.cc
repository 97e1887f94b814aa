#include "blob/format.h"

#include <cstring>
#include <random>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/crc32c.h"

namespace sluice::blob {
namespace {

constexpr char kSuperMagic[8] = {'S', 'L', 'U', 'I', 'C', 'E', 'B', 'S'};
constexpr uint32_t kCleanFlag = 1;

}  // namespace

uint32_t page_crc(const char* page, size_t crc_offset) {
  uint32_t crc = crc32c(page, crc_offset);
  const char zero[4] = {};
  crc = crc32c(zero, 4, crc);
  return crc32c(page + crc_offset + 4, kPageSize - crc_offset - 4, crc);
}

Uuid random_uuid() {
  std::random_device rd;
  Uuid u;
  for (auto& b : u) b = static_cast<uint8_t>(rd());
  u[6] = static_cast<uint8_t>((u[6] & 0x0f) | 0x40);  // RFC 4122 version 4
  u[8] = static_cast<uint8_t>((u[8] & 0x3f) | 0x80);
  return u;
}

std::string uuid_string(const Uuid& u) {
  std::string s;
  for (size_t i = 0; i < u.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += fmt::format("{:02x}", u[i]);
  }
  return s;
}

void encode_super(const SuperBlock& sb, char* p) {
  std::memset(p, 0, kPageSize);
  std::memcpy(p, kSuperMagic, 8);
  put_le<uint32_t>(p + 8, kFormatVersion);
  put_le<uint64_t>(p + 16, sb.generation);
  std::memcpy(p + 24, sb.uuid.data(), 16);
  put_le<uint32_t>(p + 40, sb.page_size);
  put_le<uint32_t>(p + 44, sb.io_unit);
  put_le<uint32_t>(p + 48, sb.cluster_size);
  put_le<uint32_t>(p + 52, sb.ckpt_pages);
  put_le<uint64_t>(p + 56, sb.device_pages);
  put_le<uint64_t>(p + 64, sb.journal_start);
  put_le<uint64_t>(p + 72, sb.journal_pages);
  put_le<uint64_t>(p + 80, sb.data_start);
  put_le<uint64_t>(p + 88, sb.num_clusters);
  put_le<uint32_t>(p + 96, sb.active_ckpt);
  put_le<uint32_t>(p + 100, sb.clean ? kCleanFlag : 0);
  put_le<uint64_t>(p + 104, sb.ckpt_seq);
  put_le<uint64_t>(p + 112, sb.journal_head_seq);
  put_le<uint64_t>(p + 120, sb.journal_head_pos);
  put_le<uint32_t>(p + 12, page_crc(p, 12));
}

bool has_super_magic(const char* page) { return std::memcmp(page, kSuperMagic, 8) == 0; }

SuperBlock read_super_fields(const char* p) {
  SuperBlock sb;
  sb.generation = get_le<uint64_t>(p + 16);
  std::memcpy(sb.uuid.data(), p + 24, 16);
  sb.page_size = get_le<uint32_t>(p + 40);
  sb.io_unit = get_le<uint32_t>(p + 44);
  sb.cluster_size = get_le<uint32_t>(p + 48);
  sb.ckpt_pages = get_le<uint32_t>(p + 52);
  sb.device_pages = get_le<uint64_t>(p + 56);
  sb.journal_start = get_le<uint64_t>(p + 64);
  sb.journal_pages = get_le<uint64_t>(p + 72);
  sb.data_start = get_le<uint64_t>(p + 80);
  sb.num_clusters = get_le<uint64_t>(p + 88);
  sb.active_ckpt = get_le<uint32_t>(p + 96);
  sb.clean = (get_le<uint32_t>(p + 100) & kCleanFlag) != 0;
  sb.ckpt_seq = get_le<uint64_t>(p + 104);
  sb.journal_head_seq = get_le<uint64_t>(p + 112);
  sb.journal_head_pos = get_le<uint64_t>(p + 120);
  return sb;
}

Result<SuperBlock> decode_super(const char* p, uint64_t device_pages) {
  auto corrupt = [](std::string why) { return Status(Errc::corrupt, "super block: " + why); };
  if (!has_super_magic(p)) return Status(Errc::not_found, "not a Sluice blobstore (no super block magic)");
  uint32_t version = get_le<uint32_t>(p + 8);
  if (get_le<uint32_t>(p + 12) != page_crc(p, 12)) return corrupt("checksum mismatch");
  if (version > kFormatVersion)
    return Status(Errc::not_supported,
                  fmt::format("blobstore format version {} is newer than this Sluice supports ({})", version,
                              kFormatVersion));
  if (version == 0) return corrupt("version 0");
  SuperBlock sb = read_super_fields(p);
  const uint32_t flags = get_le<uint32_t>(p + 100);

  // Geometry must be self-consistent and fit the device we are reading it from.
  if (sb.page_size != kPageSize) return corrupt(fmt::format("page size {}", sb.page_size));
  if (sb.io_unit < 512 || sb.io_unit > kPageSize || (sb.io_unit & (sb.io_unit - 1)) != 0)
    return corrupt(fmt::format("io unit {}", sb.io_unit));
  if (sb.cluster_size < kPageSize || sb.cluster_size % kPageSize != 0 || sb.cluster_size > (1u << 30))
    return corrupt(fmt::format("cluster size {}", sb.cluster_size));
  if (sb.active_ckpt > 1 || (flags & ~kCleanFlag) != 0) return corrupt("bad flags");
  if (sb.ckpt_pages == 0 || sb.journal_pages == 0) return corrupt("empty metadata regions");
  const uint64_t ckpt_end = 2 + 2 * uint64_t{sb.ckpt_pages};
  if (sb.journal_start != ckpt_end || sb.journal_pages > device_pages ||
      sb.journal_start + sb.journal_pages > sb.data_start)
    return corrupt("metadata regions overlap");
  if (sb.journal_head_pos >= sb.journal_pages) return corrupt("journal head outside the journal");
  const uint64_t ppc = sb.pages_per_cluster();
  if (sb.data_start > device_pages || sb.num_clusters > (device_pages - sb.data_start) / ppc ||
      sb.num_clusters >= UINT32_MAX)
    return corrupt(fmt::format("{} clusters do not fit the device ({} pages); was it shrunk?", sb.num_clusters,
                               device_pages));
  if (sb.device_pages > device_pages)
    return corrupt(fmt::format("device has {} pages, the store was made on {}", device_pages, sb.device_pages));
  return sb;
}

void seal_page(const PageHeader& h, char* p) {
  std::memset(p, 0, kPageHeaderSize);
  put_le<uint32_t>(p, static_cast<uint32_t>(h.kind));
  std::memcpy(p + 8, h.uuid.data(), 16);
  put_le<uint64_t>(p + 24, h.seq);
  put_le<uint64_t>(p + 32, h.aux);
  put_le<uint32_t>(p + 40, h.count);
  put_le<uint32_t>(p + 44, h.payload_len);
  std::memset(p + kPageHeaderSize + h.payload_len, 0, kPagePayload - h.payload_len);
  put_le<uint32_t>(p + 4, page_crc(p, 4));
}

PageHeader read_page_header(const char* p) {
  PageHeader h;
  std::memcpy(h.uuid.data(), p + 8, 16);
  h.seq = get_le<uint64_t>(p + 24);
  h.aux = get_le<uint64_t>(p + 32);
  h.count = get_le<uint32_t>(p + 40);
  h.payload_len = get_le<uint32_t>(p + 44);
  return h;
}

bool open_page(const char* p, PageKind kind, const Uuid& uuid, PageHeader* out) {
  if (get_le<uint32_t>(p) != static_cast<uint32_t>(kind)) return false;
  if (get_le<uint32_t>(p + 4) != page_crc(p, 4)) return false;
  if (std::memcmp(p + 8, uuid.data(), 16) != 0) return false;
  *out = read_page_header(p);
  out->kind = kind;
  return out->payload_len <= kPagePayload && out->count > 0;
}

}  // namespace sluice::blob
