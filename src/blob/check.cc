// Consistency checks of a loaded store (the core of `sluice blob check`).
#include <fmt/format.h>

#include "blob/store.h"

namespace sluice::blob {

std::vector<std::string> Store::check() {
  std::lock_guard lock(mu_);
  std::vector<std::string> problems;
  const Model& m = *model_;
  std::vector<uint64_t> seen(m.num_clusters(), 0);
  uint64_t owned = 0;
  for (const auto& entry : m.blobs()) {
    const uint64_t id = entry.first;  // a named copy: lambdas below capture it
    const auto& b = entry.second;
    uint64_t allocated = 0;
    b->extents.for_each([&](uint64_t i, uint32_t v) {
      const uint32_t c = v - 1;
      ++allocated;
      if (i >= b->size) problems.push_back(fmt::format("blob {}: cluster index {} beyond its size {}", id, i, b->size.load()));
      if (c >= m.num_clusters()) {
        problems.push_back(fmt::format("blob {}: cluster {} past the device", id, c));
        return;
      }
      if (seen[c]) problems.push_back(fmt::format("cluster {} owned by blob {} and blob {}", c, seen[c], id));
      seen[c] = id;
      if (m.owner(c) != id) problems.push_back(fmt::format("cluster {}: owner table says {}, blob {} maps it", c, m.owner(c), id));
      if (m.dirty(c)) problems.push_back(fmt::format("cluster {} of blob {} is marked dirty", c, id));
    });
    owned += allocated;
    if (allocated != b->allocated)
      problems.push_back(fmt::format("blob {}: counts {} clusters, maps {}", id, b->allocated, allocated));
    if (b->parent) {
      const BlobMeta* p = m.blobs().contains(b->parent) ? m.blobs().at(b->parent).get() : nullptr;
      if (!p) problems.push_back(fmt::format("blob {}: parent {} does not exist", id, b->parent));
      else if (!p->read_only()) problems.push_back(fmt::format("blob {}: parent {} is writable", id, b->parent));
    }
    if (!b->thin() && !b->parent && allocated != b->size)
      problems.push_back(fmt::format("thick blob {}: {} of {} clusters allocated", id, allocated, b->size.load()));
  }
  for (uint32_t c = 0; c < m.num_clusters(); ++c)
    if (m.owner(c) != 0 && seen[c] == 0) problems.push_back(fmt::format("cluster {} owned by blob {} which does not map it", c, m.owner(c)));
  if (m.num_clusters() - owned != m.free_clusters())
    problems.push_back(fmt::format("free count {} but {} of {} clusters are unowned", m.free_clusters(),
                                   m.num_clusters() - owned, m.num_clusters()));
  if (m.super_blob() && !m.blobs().contains(m.super_blob()))
    problems.push_back(fmt::format("super blob {} does not exist", m.super_blob()));
  return problems;
}

}  // namespace sluice::blob
