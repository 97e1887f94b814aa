#include "blobtool/inventory.h"

#include <fmt/format.h>

#include "base/size.h"
#include "blob/blob.h"
#include "blob/records.h"
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

// Where a run's first cluster is on the device, in bytes.
uint64_t device_offset(const blob::StoreInfo& si, const blob::ClusterRun& r) {
  return si.data_offset + static_cast<uint64_t>(r.device_cluster) * si.cluster_size;
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
  const auto si = bs.store_info();
  return {{"device", spec},
          {"uuid", si.uuid},
          {"cluster_size", si.cluster_size},
          {"io_unit", si.io_unit},
          {"total_clusters", si.total_clusters},
          {"free_clusters", si.free_clusters},
          {"dirty_clusters", si.dirty_clusters},
          {"blobs", si.blobs},
          {"super_blob", super_blob(bs) == 0 ? nlohmann::json(nullptr) : nlohmann::json(super_blob(bs))},
          {"journal_pages_used", si.journal_pages_used},
          {"journal_pages", si.journal_pages},
          {"needs_recovery", si.recovered || si.dirty_clusters > 0}};
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
                              si.uuid, spec, si.blobs, si.free_clusters,
                              si.total_clusters, format_size(cs));
  if (si.recovered || si.dirty_clusters > 0)
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
  auto runs = bs.cluster_runs(id);
  if (!runs.ok()) return runs.status();
  const auto si = bs.store_info();
  nlohmann::json j = summary_json(*info, si.cluster_size, super_blob(bs));
  nlohmann::json extents = nlohmann::json::array();
  for (const blob::ClusterRun& r : *runs) {
    nlohmann::json e = {{"first", r.first}, {"count", r.count}};
    if (r.device_cluster >= 0) {
      e["device_first"] = r.device_cluster;
      e["device_offset"] = device_offset(si, r);
    } else {
      e["device_first"] = nullptr;
      e["reads"] = info->parent ? "parent" : "zeroes";
    }
    extents.push_back(e);
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
  auto runs = bs.cluster_runs(id);
  if (!runs.ok()) return runs.status();
  const auto si = bs.store_info();
  const uint32_t cs = si.cluster_size;
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
  if (runs->empty()) o += "    (none: the blob is empty)\n";
  for (const blob::ClusterRun& r : *runs) {
    std::string range = fmt::format("[{}..{}]", r.first, r.first + r.count - 1);
    if (r.device_cluster >= 0) {
      o += fmt::format("    {:<20} -> device [{}..{}]  offset {:#x}\n", range, r.device_cluster,
                       r.device_cluster + static_cast<int64_t>(r.count) - 1, device_offset(si, r));
    } else {
      o += fmt::format("    {:<20} -> unallocated (reads {})\n", range, b.parent ? fmt::format("from blob {}", b.parent) : "zeroes");
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
