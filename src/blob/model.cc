#include "blob/model.h"

#include <algorithm>

#include <fmt/format.h>

namespace sluice::blob {

Model::Model(uint32_t num_clusters) : owner_(num_clusters, 0), dirty_(num_clusters, false), free_(num_clusters) {}

BlobMeta* Model::find(uint64_t id) {
  auto it = blobs_.find(id);
  return it == blobs_.end() ? nullptr : it->second.get();
}

Status Model::check_blob(const Record& r, BlobMeta** out) {
  *out = find(r.id);
  if (*out == nullptr) return Status(Errc::corrupt, fmt::format("record names blob {} which does not exist", r.id));
  return Status::Ok();
}

void Model::release_cluster(uint32_t c) {
  // Owned clusters are never marked dirty, so this one becomes dirty and unowned.
  owner_[c] = 0;
  ++free_;
  dirty_[c] = true;
  ++dirty_unowned_;
}

std::vector<uint32_t> Model::dirty_unowned_list() const {
  std::vector<uint32_t> out;
  for (uint32_t c = 0; c < owner_.size(); ++c)
    if (dirty_[c] && owner_[c] == 0) out.push_back(c);
  return out;
}

uint32_t Model::find_clean_free(uint32_t from) const {
  const uint32_t n = num_clusters();
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t c = (from + i) % n;
    if (owner_[c] == 0 && !dirty_[c]) return c;
  }
  return UINT32_MAX;
}

Status Model::set_extent_run(BlobMeta& b, uint64_t first, uint32_t count, uint32_t cluster_plus1) {
  if (count == 0 || first >= b.size || count > b.size - first)
    return Status(Errc::corrupt, fmt::format("extent [{}, +{}) outside blob {} of {} clusters", first, count, b.id, b.size));
  if (cluster_plus1 != 0) {
    uint64_t c0 = cluster_plus1 - 1;
    if (c0 + count > owner_.size())
      return Status(Errc::corrupt, fmt::format("extent of blob {} names clusters past the device", b.id));
    for (uint32_t i = 0; i < count; ++i) {
      uint64_t o = owner_[c0 + i];
      uint32_t cur = b.extents.get(first + i);
      if (o != 0 && !(o == b.id && cur == c0 + i + 1))
        return Status(Errc::corrupt, fmt::format("cluster {} claimed by blob {} is owned by blob {}", c0 + i, b.id, o));
    }
  }
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t cur = b.extents.get(first + i);
    uint32_t next = cluster_plus1 ? cluster_plus1 + i : 0;
    if (cur == next) continue;
    if (cur) {
      release_cluster(cur - 1);
      --b.allocated;
    }
    if (next) {
      uint32_t c = next - 1;
      owner_[c] = b.id;
      --free_;
      if (dirty_[c]) {
        dirty_[c] = false;  // owned data is the owner's business now
        --dirty_unowned_;
      }
      ++b.allocated;
    }
    b.extents.set(first + i, next);
  }
  return Status::Ok();
}

Status Model::apply(const Record& r) {
  BlobMeta* b = nullptr;
  const uint64_t max_size = std::max<uint64_t>(owner_.size(), 1) * kMaxOvercommit;
  switch (r.type) {
    case RecordType::create: {
      if (r.id == 0 || r.id > kMaxBlobId) return Status(Errc::corrupt, fmt::format("blob id {} is out of range", r.id));
      if (find(r.id)) return Status(Errc::corrupt, fmt::format("blob {} created twice", r.id));
      if (r.flags & ~kKnownFlags) return Status(Errc::corrupt, fmt::format("blob {} has unknown flags {:#x}", r.id, r.flags));
      if (r.value > max_size) return Status(Errc::corrupt, fmt::format("blob {} of {} clusters is too large", r.id, r.value));
      if (r.parent && !find(r.parent)) return Status(Errc::corrupt, fmt::format("blob {} has missing parent {}", r.id, r.parent));
      auto nb = std::make_unique<BlobMeta>();
      nb->id = r.id;
      nb->flags = r.flags;
      nb->parent = r.parent;
      nb->parent_meta.store(r.parent ? find(r.parent) : nullptr, std::memory_order_release);
      nb->size = r.value;
      if (r.parent) find(r.parent)->clones.push_back(r.id);
      blobs_.emplace(r.id, std::move(nb));
      next_id_ = std::max(next_id_, r.id + 1);
      return Status::Ok();
    }
    case RecordType::remove: {
      SLUICE_RETURN_IF_ERROR(check_blob(r, &b));
      if (!b->clones.empty()) return Status(Errc::corrupt, fmt::format("blob {} removed while it has clones", r.id));
      std::vector<std::pair<uint64_t, uint32_t>> owned;
      b->extents.for_each([&](uint64_t i, uint32_t v) { owned.emplace_back(i, v); });
      for (auto& [i, v] : owned) release_cluster(v - 1);
      if (b->parent) {
        auto& cl = find(b->parent)->clones;
        cl.erase(std::remove(cl.begin(), cl.end(), r.id), cl.end());
      }
      if (super_blob_ == r.id) super_blob_ = 0;
      blobs_.erase(r.id);
      return Status::Ok();
    }
    case RecordType::resize: {
      SLUICE_RETURN_IF_ERROR(check_blob(r, &b));
      if (r.value > max_size) return Status(Errc::corrupt, fmt::format("blob {} resized to {} clusters", r.id, r.value));
      if (r.value < b->size) {
        std::vector<uint64_t> cut;
        b->extents.for_each([&](uint64_t i, uint32_t) {
          if (i >= r.value) cut.push_back(i);
        });
        for (uint64_t i : cut) {
          release_cluster(b->extents.get(i) - 1);
          --b->allocated;
          b->extents.set(i, 0);
        }
      }
      b->size = r.value;
      return Status::Ok();
    }
    case RecordType::extent:
      SLUICE_RETURN_IF_ERROR(check_blob(r, &b));
      return set_extent_run(*b, r.value, r.count, r.cluster);
    case RecordType::xattr_set:
      SLUICE_RETURN_IF_ERROR(check_blob(r, &b));
      if (r.name.empty() || r.name.size() > kMaxXattrName || r.data.size() > kMaxXattrValue)
        return Status(Errc::corrupt, fmt::format("blob {} has a malformed attribute", r.id));
      b->xattrs[r.internal ? 1 : 0][r.name] = r.data;
      return Status::Ok();
    case RecordType::xattr_remove:
      SLUICE_RETURN_IF_ERROR(check_blob(r, &b));
      b->xattrs[r.internal ? 1 : 0].erase(r.name);
      return Status::Ok();
    case RecordType::set_parent: {
      SLUICE_RETURN_IF_ERROR(check_blob(r, &b));
      if (r.parent == r.id) return Status(Errc::corrupt, fmt::format("blob {} is its own parent", r.id));
      if (r.parent) {
        // Walking up from the new parent must not reach this blob (no cycles).
        for (BlobMeta* p = find(r.parent); p; p = p->parent ? find(p->parent) : nullptr) {
          if (p->id == r.id) return Status(Errc::corrupt, fmt::format("blob {} parent cycle", r.id));
        }
        if (!find(r.parent)) return Status(Errc::corrupt, fmt::format("blob {} has missing parent {}", r.id, r.parent));
      }
      if (b->parent) {
        auto& cl = find(b->parent)->clones;
        cl.erase(std::remove(cl.begin(), cl.end(), r.id), cl.end());
      }
      b->parent = r.parent;
      b->parent_meta.store(r.parent ? find(r.parent) : nullptr, std::memory_order_release);
      if (r.parent) find(r.parent)->clones.push_back(r.id);
      return Status::Ok();
    }
    case RecordType::set_flags:
      SLUICE_RETURN_IF_ERROR(check_blob(r, &b));
      if (r.flags & ~kKnownFlags) return Status(Errc::corrupt, fmt::format("blob {} has unknown flags {:#x}", r.id, r.flags));
      b->flags = r.flags;
      return Status::Ok();
    case RecordType::next_id:
      if (r.id > kMaxBlobId + 1) return Status(Errc::corrupt, fmt::format("next blob id {} is out of range", r.id));
      next_id_ = std::max(next_id_, r.id);
      return Status::Ok();
    case RecordType::super_blob:
      if (r.id != 0 && !find(r.id)) return Status(Errc::corrupt, fmt::format("super blob {} does not exist", r.id));
      super_blob_ = r.id;
      return Status::Ok();
    case RecordType::dirty:
    case RecordType::clean: {
      for (uint32_t c : r.clusters)
        if (c >= owner_.size()) return Status(Errc::corrupt, fmt::format("cluster {} past the device", c));
      const bool to_dirty = r.type == RecordType::dirty;
      for (uint32_t c : r.clusters) {
        if (owner_[c] != 0 || dirty_[c] == to_dirty) continue;  // owned clusters' state is their owner's
        dirty_[c] = to_dirty;
        if (to_dirty) ++dirty_unowned_; else --dirty_unowned_;
      }
      return Status::Ok();
    }
  }
  return Status(Errc::corrupt, "unknown record");
}

std::vector<Record> Model::checkpoint_records() const {
  std::vector<Record> out;
  out.push_back(Record::make_next_id(next_id_));
  for (const auto& entry : blobs_) {
    const uint64_t id = entry.first;  // a named copy: the lambda below captures it
    const auto& b = entry.second;
    out.push_back(Record::make_create(id, b->flags, 0, b->size));
    // Runs of consecutive device clusters collapse into one record.
    uint64_t run_first = 0, run_len = 0;
    uint32_t run_cluster = 0;
    auto flush_run = [&] {
      if (run_len) out.push_back(Record::make_extent(id, run_first, static_cast<uint32_t>(run_len), run_cluster));
      run_len = 0;
    };
    b->extents.for_each([&](uint64_t i, uint32_t v) {
      if (run_len && i == run_first + run_len && v == run_cluster + run_len && run_len < UINT32_MAX) {
        ++run_len;
        return;
      }
      flush_run();
      run_first = i;
      run_cluster = v;
      run_len = 1;
    });
    flush_run();
    for (int k = 0; k < 2; ++k)
      for (const auto& [name, value] : b->xattrs[k]) out.push_back(Record::make_xattr_set(id, k == 1, name, value));
  }
  // Parents after every blob exists: a snapshot has a larger id than the blob it came from.
  for (const auto& [id, b] : blobs_)
    if (b->parent) out.push_back(Record::make_set_parent(id, b->parent));
  if (super_blob_) out.push_back(Record::make_super_blob(super_blob_));
  auto dirty = dirty_unowned_list();
  for (size_t i = 0; i < dirty.size(); i += kMaxClustersPerRecord) {
    size_t end = std::min(dirty.size(), i + kMaxClustersPerRecord);
    out.push_back(Record::make_clusters(RecordType::dirty, {dirty.begin() + i, dirty.begin() + end}));
  }
  return out;
}

}  // namespace sluice::blob
