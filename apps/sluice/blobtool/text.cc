#include "blobtool/text.h"

#include <algorithm>

#include <fmt/format.h>


namespace sluice::blobtool {

std::string escaped(std::string_view bytes) {
  std::string out = "\"";
  for (unsigned char c : bytes) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

namespace {

bool plain_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) n = 0;
    else if ((c & 0xe0) == 0xc0 && c >= 0xc2) n = 1;
    else if ((c & 0xf0) == 0xe0) n = 2;
    else if ((c & 0xf8) == 0xf0 && c <= 0xf4) n = 3;
    else return false;
    if (n > 0 && i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

}  // namespace

nlohmann::json json_bytes(std::string_view bytes) {
  if (plain_utf8(bytes)) {
    try {
      nlohmann::json j = std::string(bytes);
      (void)j.dump();  // rejects what the check above let through (overlongs, surrogates)
      return j;
    } catch (const nlohmann::json::exception&) {
    }
  }
  std::string hex;
  for (unsigned char c : bytes) hex += fmt::format("{:02x}", c);
  return nlohmann::json{{"hex", hex}};
}

std::string cluster_ranges(std::vector<uint32_t> clusters) {
  std::sort(clusters.begin(), clusters.end());
  std::string out;
  for (size_t i = 0; i < clusters.size();) {
    size_t j = i + 1;
    while (j < clusters.size() && clusters[j] == clusters[j - 1] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j - i == 1 ? fmt::format("{}", clusters[i]) : fmt::format("{}-{}", clusters[i], clusters[j - 1]);
    i = j;
  }
  return out.empty() ? "-" : out;
}

std::string blob_flags(uint32_t flags) {
  std::string out;
  auto add = [&](std::string_view s) { out += out.empty() ? std::string(s) : "|" + std::string(s); };
  if (flags & blob::kFlagThin) add("thin");
  if (flags & blob::kFlagReadOnly) add("read-only");
  if (flags & blob::kFlagSnapshot) add("snapshot");
  if (flags & ~blob::kKnownFlags) add(fmt::format("{:#x}", flags & ~blob::kKnownFlags));
  return out.empty() ? "-" : out;
}

std::string record_type_name(blob::RecordType t) {
  using blob::RecordType;
  switch (t) {
    case RecordType::create: return "CREATE";
    case RecordType::remove: return "DELETE";
    case RecordType::resize: return "RESIZE";
    case RecordType::extent: return "EXTENT";
    case RecordType::xattr_set: return "XATTR_SET";
    case RecordType::xattr_remove: return "XATTR_REMOVE";
    case RecordType::set_parent: return "SET_PARENT";
    case RecordType::set_flags: return "SET_FLAGS";
    case RecordType::next_id: return "NEXT_ID";
    case RecordType::dirty: return "DIRTY";
    case RecordType::clean: return "CLEAN";
    case RecordType::super_blob: return "SUPER_BLOB";
  }
  return fmt::format("TYPE_{}", static_cast<unsigned>(t));
}

std::string record_text(const blob::Record& r) {
  using blob::RecordType;
  const std::string name = record_type_name(r.type);
  switch (r.type) {
    case RecordType::create:
      return fmt::format("{} blob={} flags={} parent={} size={} clusters", name, r.id, blob_flags(r.flags), r.parent,
                         r.value);
    case RecordType::remove: return fmt::format("{} blob={}", name, r.id);
    case RecordType::resize: return fmt::format("{} blob={} size={} clusters", name, r.id, r.value);
    case RecordType::extent:
      if (r.cluster == 0) return fmt::format("{} blob={} clusters=[{},+{}) -> unallocated", name, r.id, r.value, r.count);
      return fmt::format("{} blob={} clusters=[{},+{}) -> device {}..{}", name, r.id, r.value, r.count, r.cluster - 1,
                         uint64_t{r.cluster} - 1 + r.count - 1);
    case RecordType::xattr_set:
      return fmt::format("{} blob={} {} {}={}", name, r.id, r.internal ? "internal" : "user", escaped(r.name),
                         escaped(r.data));
    case RecordType::xattr_remove:
      return fmt::format("{} blob={} {} {}", name, r.id, r.internal ? "internal" : "user", escaped(r.name));
    case RecordType::set_parent: return fmt::format("{} blob={} parent={}", name, r.id, r.parent);
    case RecordType::set_flags: return fmt::format("{} blob={} flags={}", name, r.id, blob_flags(r.flags));
    case RecordType::next_id: return fmt::format("{} next={}", name, r.id);
    case RecordType::dirty:
    case RecordType::clean:
      return fmt::format("{} count={} clusters={}", name, r.clusters.size(), cluster_ranges(r.clusters));
    case RecordType::super_blob: return fmt::format("{} blob={}", name, r.id);
  }
  return name;
}

nlohmann::json record_json(const blob::Record& r) {
  using blob::RecordType;
  nlohmann::json j = {{"type", record_type_name(r.type)}};
  switch (r.type) {
    case RecordType::create:
      j["blob"] = r.id;
      j["flags"] = r.flags;
      j["parent"] = r.parent;
      j["size_clusters"] = r.value;
      break;
    case RecordType::remove:
    case RecordType::super_blob: j["blob"] = r.id; break;
    case RecordType::resize:
      j["blob"] = r.id;
      j["size_clusters"] = r.value;
      break;
    case RecordType::extent:
      j["blob"] = r.id;
      j["first"] = r.value;
      j["count"] = r.count;
      j["device_first"] = r.cluster == 0 ? nlohmann::json(nullptr) : nlohmann::json(r.cluster - 1);
      break;
    case RecordType::xattr_set:
    case RecordType::xattr_remove:
      j["blob"] = r.id;
      j["internal"] = r.internal;
      j["name"] = json_bytes(r.name);
      if (r.type == RecordType::xattr_set) j["value"] = json_bytes(r.data);
      break;
    case RecordType::set_parent:
      j["blob"] = r.id;
      j["parent"] = r.parent;
      break;
    case RecordType::set_flags:
      j["blob"] = r.id;
      j["flags"] = r.flags;
      break;
    case RecordType::next_id: j["next"] = r.id; break;
    case RecordType::dirty:
    case RecordType::clean: j["clusters"] = r.clusters; break;
  }
  return j;
}

}  // namespace sluice::blobtool
