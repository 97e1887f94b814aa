#include "blob/probe.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include "base/coding.h"
#include "base/size.h"
#include "blob/format.h"
#include "blob/signatures.h"

namespace sluice::blob {
namespace {

constexpr uint64_t kHeadBytes = 4u << 20;
constexpr uint64_t kTailBytes = 1u << 20;
constexpr uint64_t kChunkBytes = 1u << 20;  // per read, so no device limit on one transfer matters

struct Owners {
  std::mutex mu;
  std::vector<std::pair<std::string, OwnerProbe>> list;
};

Owners& owners() {
  static auto* o = new Owners();  // never destroyed: owners register from static initializers
  return *o;
}

// Reads `bytes` from `offset` (both whole blocks) into `out`.
Status read_range(bdev::BdevDesc& desc, bdev::BdevChannel* ch, uint64_t offset, uint64_t bytes, std::string& out) {
  const auto& g = desc.geometry();
  const size_t align = std::max<size_t>(4096, g.buf_align);
  std::unique_ptr<char, void (*)(void*)> buf(static_cast<char*>(std::aligned_alloc(align, kChunkBytes)), std::free);
  if (!buf) return Status(Errc::no_space, "out of memory for the probe's read buffer");
  out.clear();
  for (uint64_t done = 0; done < bytes;) {
    const uint64_t n = std::min(kChunkBytes, bytes - done);
    bdev::SyncIo io{desc, ch};
    SLUICE_RETURN_IF_ERROR(io.read(buf.get(), (offset + done) / g.block_size, n / g.block_size));
    out.append(buf.get(), n);
    done += n;
  }
  return Status::Ok();
}

// The first 4 MiB and the last 1 MiB (or the whole device, when that is smaller).
Result<DeviceWindows> read_windows(std::string_view bdev_name) {
  bdev::OpenOptions o;
  o.write = false;
  o.claim = bdev::Claim::shared;
  auto desc = bdev::open(bdev_name, o);
  if (!desc.ok()) return desc.status();
  const auto& g = (*desc)->geometry();
  DeviceWindows w;
  w.device_bytes = g.size_bytes();
  w.block_size = g.block_size;
  const uint64_t head = std::min(w.device_bytes, kHeadBytes);
  w.tail_offset = std::max(head, (w.device_bytes - std::min(w.device_bytes, kTailBytes)) / g.block_size * g.block_size);
  auto ch = (*desc)->get_channel();
  if (!ch.ok()) return ch.status();
  Status st = read_range(**desc, *ch, 0, head, w.head);
  if (st.ok()) st = read_range(**desc, *ch, w.tail_offset, w.device_bytes - w.tail_offset, w.tail);
  (void)(*desc)->put_channel(*ch);
  if (!st.ok()) return Status(st.code(), fmt::format("probing {}: {}", bdev_name, st.message()));
  return w;
}

// Sluice's labels: a super block copy, or the first checkpoint page (written by every init,
// and still there when both super block copies were zeroed).
bool has_blobstore_label(const std::string& head) {
  if (head.size() >= 2 * kPageSize && (has_super_magic(head.data()) || has_super_magic(head.data() + kPageSize)))
    return true;
  return head.size() >= 3 * kPageSize &&
         get_le<uint32_t>(head.data() + 2 * kPageSize) == static_cast<uint32_t>(PageKind::checkpoint);
}

// Whose store it is, and how full.
// The owner that claims the store whose super blob is `super`: its name and description.
std::optional<std::pair<std::string, std::string>> claim(Blobstore& bs, BlobId super) {
  std::vector<std::pair<std::string, OwnerProbe>> list;
  {
    std::lock_guard lock(owners().mu);
    list = owners().list;
  }
  for (auto& [name, probe] : list)
    if (auto what = probe(bs, super)) return std::make_pair(name, *what);
  return std::nullopt;
}

void describe_store(Blobstore& bs, Probe& p) {
  const StoreInfo si = bs.store_info();
  const std::string usage = fmt::format("blobstore {}, {} of {} used", si.uuid,
                                        format_size((si.total_clusters - si.free_clusters) * si.cluster_size),
                                        format_size(si.total_clusters * si.cluster_size));
  auto super = bs.super_blob();
  if (!super.ok()) {
    p.description = fmt::format("a Sluice blobstore with {} blob(s) and no super blob ({})", si.blobs, usage);
    return;
  }
  if (auto owner = claim(bs, *super)) {
    p.owner = owner->first;
    p.description = fmt::format("{} in {}", owner->second, usage);
    return;
  }
  std::string attrs;
  if (auto info = bs.info(*super); info.ok())
    for (auto& [k, v] : info->internal_xattrs) attrs += (attrs.empty() ? "" : ", ") + k;
  p.description = fmt::format(
      "a Sluice blobstore whose super blob (blob {}, attributes: {}) belongs to no user this "
      "program knows ({})",
      *super, attrs.empty() ? "none" : attrs, usage);
}

// Where the first non-zero byte is, if any.
std::optional<uint64_t> first_data(const DeviceWindows& w) {
  auto nonzero = [](const std::string& s) { return std::find_if(s.begin(), s.end(), [](char c) { return c != 0; }); };
  if (auto it = nonzero(w.head); it != w.head.end()) return static_cast<uint64_t>(it - w.head.begin());
  if (auto it = nonzero(w.tail); it != w.tail.end()) return w.tail_offset + static_cast<uint64_t>(it - w.tail.begin());
  return std::nullopt;
}

}  // namespace

std::string_view content_name(Content c) {
  switch (c) {
    case Content::blank: return "blank";
    case Content::blobstore: return "blobstore";
    case Content::damaged: return "damaged";
    case Content::foreign: return "foreign";
    case Content::data: return "data";
  }
  return "unknown";
}

void register_owner(std::string_view name, OwnerProbe probe) {
  std::lock_guard lock(owners().mu);
  for (auto& [n, p] : owners().list)
    if (n == name) return;
  owners().list.emplace_back(std::string(name), std::move(probe));
}

Result<Probe> probe_device(std::string_view bdev_name) {
  auto w = read_windows(bdev_name);  // the handle is closed again before the load claims the device
  if (!w.ok()) return w.status();
  Probe p;
  auto sigs = find_signatures(*w);
  if (!sigs.ok())
    return Status(sigs.status().code(), fmt::format("probing {}: {}", bdev_name, sigs.status().message()));
  p.signatures = std::move(sigs.value());

  std::optional<Status> unloadable;
  if (has_blobstore_label(w->head)) {
    LoadOptions lo;
    lo.read_only = true;  // recovery, if any, happens in memory only
    auto bs = Blobstore::load(bdev_name, lo);
    if (bs.ok()) {
      p.content = Content::blobstore;
      describe_store(**bs, p);
      (void)(*bs)->unload();  // read-only: writes nothing
      return p;
    }
    const Errc code = bs.status().code();
    if (code != Errc::corrupt && code != Errc::not_supported && code != Errc::not_found) return bs.status();
    unloadable = bs.status();
  }
  if (!p.signatures.empty()) {
    p.content = Content::foreign;
    for (size_t i = 0; i < p.signatures.size(); ++i) p.description += (i ? " and " : "") + p.signatures[i];
    if (unloadable) p.description += ", over the remains of a Sluice blobstore";
  } else if (unloadable) {
    p.content = Content::damaged;
    p.description = unloadable->code() == Errc::not_found
                        ? "the remains of a Sluice blobstore (its checkpoint, but neither super block copy)"
                        : fmt::format("a Sluice blobstore that does not load ({})", unloadable->message());
  } else if (auto at = first_data(*w)) {
    p.content = Content::data;
    p.description = fmt::format("data of an unknown kind (a non-zero byte at offset {})", *at);
  } else {
    p.description = "nothing (blank)";
  }
  return p;
}

std::optional<std::string> owner_description(Blobstore& bs) {
  auto super = bs.super_blob();
  if (!super.ok()) return std::nullopt;
  auto owner = claim(bs, *super);
  if (!owner) return std::nullopt;
  return owner->second;
}

Status check_blank(std::string_view bdev_name) {
  auto p = probe_device(bdev_name);
  if (!p.ok()) return p.status();
  if (p->content == Content::blank) return Status::Ok();
  return Status(Errc::exists,
                fmt::format("{} already holds {}; formatting it would destroy that", bdev_name, p->description));
}

}  // namespace sluice::blob
