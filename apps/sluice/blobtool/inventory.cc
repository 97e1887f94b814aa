#include "blobtool/inventory.h"

#include <fmt/format.h>

#include "base/size.h"
#include "blob/store.h"
#include "blobtool/text.h"

namespace sluice::blobtool {
namespace {

using blob::BlobId;
using blob::BlobInfo;

// The name people know a blob by: a "name" attribute, or an lvol volume's or store's.
std::string display_name(const BlobInfo& b) {
  if (auto it = b.xattrs.find("name"); it != b.xattrs.end()) return it->second;
  if (auto it = b.internal_xattrs.find("lvol.name"); it != b.internal_xattrs.end()) return it->second;
  if (auto it = b.internal_xattrs.find("lvs.name"); it != b.internal_xattrs.end()) return "lvol store " + it->second;
  return {};
}

uint32_t flags_of(const BlobInfo& b) {
  return (b.thin ? blob::kFlagThin : 0) | (b.read_only ? blob::kFlagReadOnly : 0) | (b.snapshot ? blob::kFlagSnapshot : 0);
}

BlobId super_blob(blob::Blobstore& bs) {
  auto s = bs.super_blob();
  return s.ok() ? s.value() : 0;
}

// Runs of the extent map: allocated runs map consecutive blob clusters to consecutive device
// clusters; the gaps between them (and up to the size) are unallocated.
struct Run {
  uint64_t first = 0, count = 0;
  int64_t device_first = -1;  // -1: unallocated
};

std::vector<Run> runs_of(const blob::BlobMeta& m) {
  std::vector<Run> out;
  uint64_t next = 0;
  m.extents.for_each([&](uint64_t i, uint32_t v) {
    if (i >= m.size) return;  // check reports it; it is not part of the blob
    const int64_t dev = int64_t{v} - 1;
    if (i > next) out.push_back({next, i - next, -1});
    if (!out.empty() && out.back().device_first >= 0 && out.back().first + out.back().count == i &&
        out.back().device_first + static_cast<int64_t>(out.back().count) == dev) {
      ++out.back().count;
    } else {
      out.push_back({i, 1, dev});
    }
    next = i + 1;
  });
  if (next < m.size) out.push_back({next, m.size - next, -1});
  return out;
}

nlohmann::json xattrs_json(const std::map<std::string, std::string>& x) {
  nlohmann::json j = nlohmann::json::object();
  for (auto& [k, v] : x) j[json_bytes(k).is_string() ? k : escaped(k)] = json_bytes(v);
  return j;
}

nlohmann::json summary_json(const BlobInfo& b, uint32_t cluster_size, BlobId super) {
  std::string name = display_name(b);
  return {{"id", b.id},
          {"size_clusters", b.size_clusters},
          {"size_bytes", b.size_clusters * cluster_size},
          {"allocated_clusters", b.allocated_clusters},
          {"allocated_bytes", b.allocated_clusters * cluster_size},
          {"thin", b.thin},
          {"read_only", b.read_only},
          {"snapshot", b.snapshot},
          {"parent", b.parent == 0 ? nlohmann::json(nullptr) : nlohmann::json(b.parent)},
          {"clones", b.clones},
          {"super_blob", b.id == super},
          {"name", name.empty() ? nlohmann::json(nullptr) : json_bytes(name)}};
}

nlohmann::json store_json(blob::Blobstore& bs, const std::string& spec) {
  const auto& sb = bs.store().super();
  const auto si = bs.store_info();
  const auto& m = bs.store().model();
  return {{"device", spec},
          {"uuid", blob::uuid_string(sb.uuid)},
          {"cluster_size", si.cluster_size},
          {"io_unit", si.io_unit},
          {"total_clusters", si.total_clusters},
          {"free_clusters", si.free_clusters},
          {"dirty_clusters", m.dirty_unowned()},
          {"blobs", si.blobs},
          {"super_blob", super_blob(bs) == 0 ? nlohmann::json(nullptr) : nlohmann::json(super_blob(bs))},
          {"journal_pages_used", si.journal_pages_used},
          {"journal_pages", si.journal_pages},
          {"needs_recovery", si.recovered || m.dirty_unowned() > 0}};
}

}  // namespace

nlohmann::json list_json(blob::Blobstore& bs, const std::string& spec) {
  nlohmann::json blobs = nlohmann::json::array();
  const uint32_t cs = bs.store_info().cluster_size;
  const BlobId super = super_blob(bs);
  for (BlobId id : bs.list()) {
    auto info = bs.info(id);
    if (info.ok()) blobs.push_back(summary_json(*info, cs, super));
  }
  return {{"store", store_json(bs, spec)}, {"blobs", blobs}};
}

std::string list_text(blob::Blobstore& bs, const std::string& spec) {
  const auto si = bs.store_info();
  const uint32_t cs = si.cluster_size;
  const BlobId super = super_blob(bs);
  std::string o = fmt::format("store {} on {}: {} blob(s), {} of {} clusters of {} free\n",
                              blob::uuid_string(bs.store().super().uuid), spec, si.blobs, si.free_clusters,
                              si.total_clusters, format_size(cs));
  if (si.recovered || bs.store().model().dirty_unowned() > 0)
    o += "note: the store was not unloaded cleanly; this is what recovery will find (nothing was written)\n";
  auto ids = bs.list();
  if (ids.empty()) return o;
  o += fmt::format("{:>8} {:>10} {:>9} {:>10} {:>9}  {:<24} {:>8}  {}\n", "ID", "CLUSTERS", "SIZE", "ALLOCATED", "ALLOC",
                   "FLAGS", "PARENT", "NAME");
  for (BlobId id : ids) {
    auto info = bs.info(id);
    if (!info.ok()) continue;
    const BlobInfo& b = *info;
    std::string flags = blob_flags(flags_of(b));
    if (id == super) flags = flags == "-" ? "super" : flags + "|super";
    std::string name = display_name(b);
    o += fmt::format("{:>8} {:>10} {:>9} {:>10} {:>9}  {:<24} {:>8}  {}\n", id, b.size_clusters,
                     format_size(b.size_clusters * cs), b.allocated_clusters, format_size(b.allocated_clusters * cs),
                     flags, b.parent ? fmt::format("{}", b.parent) : "-", name.empty() ? "" : escaped(name));
  }
  return o;
}

Result<nlohmann::json> show_json(blob::Blobstore& bs, BlobId id) {
  auto info = bs.info(id);
  if (!info.ok()) return info.status();
  const auto& sb = bs.store().super();
  nlohmann::json j = summary_json(*info, sb.cluster_size, super_blob(bs));
  const auto& blobs = bs.store().model().blobs();
  nlohmann::json extents = nlohmann::json::array();
  if (auto it = blobs.find(id); it != blobs.end()) {
    for (const Run& r : runs_of(*it->second)) {
      nlohmann::json e = {{"first", r.first}, {"count", r.count}};
      if (r.device_first >= 0) {
        e["device_first"] = r.device_first;
        e["device_offset"] = (sb.data_start + static_cast<uint64_t>(r.device_first) * sb.pages_per_cluster()) * blob::kPageSize;
      } else {
        e["device_first"] = nullptr;
        e["reads"] = info->parent ? "parent" : "zeroes";
      }
      extents.push_back(e);
    }
  }
  j["extents"] = extents;
  j["xattrs"] = xattrs_json(info->xattrs);
  j["internal_xattrs"] = xattrs_json(info->internal_xattrs);
  return j;
}

Result<std::string> show_text(blob::Blobstore& bs, BlobId id) {
  auto info = bs.info(id);
  if (!info.ok()) return info.status();
  const BlobInfo& b = *info;
  const auto& sb = bs.store().super();
  const uint32_t cs = sb.cluster_size;
  std::string o = fmt::format("blob {}{}\n", id, id == super_blob(bs) ? " (the store's super blob)" : "");
  if (std::string n = display_name(b); !n.empty()) o += fmt::format("  name:       {}\n", escaped(n));
  o += fmt::format("  size:       {} clusters ({} bytes, {})\n", b.size_clusters, b.size_clusters * cs,
                   format_size(b.size_clusters * cs));
  o += fmt::format("  allocated:  {} clusters ({} bytes, {})\n", b.allocated_clusters, b.allocated_clusters * cs,
                   format_size(b.allocated_clusters * cs));
  o += fmt::format("  flags:      {}\n", blob_flags(flags_of(b)));
  o += fmt::format("  parent:     {}\n", b.parent ? fmt::format("{}", b.parent) : "-");
  std::string clones;
  for (BlobId c : b.clones) clones += fmt::format("{}{}", clones.empty() ? "" : ", ", c);
  o += fmt::format("  clones:     {}\n", clones.empty() ? "-" : clones);
  o += "  extents (blob clusters -> device clusters):\n";
  const auto& blobs = bs.store().model().blobs();
  if (auto it = blobs.find(id); it != blobs.end()) {
    auto runs = runs_of(*it->second);
    if (runs.empty()) o += "    (none: the blob is empty)\n";
    for (const Run& r : runs) {
      std::string range = fmt::format("[{}..{}]", r.first, r.first + r.count - 1);
      if (r.device_first >= 0) {
        uint64_t off = (sb.data_start + static_cast<uint64_t>(r.device_first) * sb.pages_per_cluster()) * blob::kPageSize;
        o += fmt::format("    {:<20} -> device [{}..{}]  offset {:#x}\n", range, r.device_first,
                         r.device_first + static_cast<int64_t>(r.count) - 1, off);
      } else {
        o += fmt::format("    {:<20} -> unallocated (reads {})\n", range, b.parent ? fmt::format("from blob {}", b.parent) : "zeroes");
      }
    }
  }
  for (int k = 0; k < 2; ++k) {
    const auto& x = k == 0 ? b.xattrs : b.internal_xattrs;
    o += fmt::format("  {} attributes:{}\n", k == 0 ? "user" : "internal", x.empty() ? " -" : "");
    for (auto& [name, value] : x) o += fmt::format("    {} = {}\n", escaped(name), escaped(value));
  }
  return o;
}

}  // namespace sluice::blobtool
