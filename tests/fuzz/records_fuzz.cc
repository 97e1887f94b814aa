// Fuzz target: the metadata record decoder and the model that applies records
// (src/blob/records.h, src/blob/model.h).
//
// Input: byte 0 is the device's cluster count (0-255), the rest a record payload. Every
// decoded record is applied to a fresh Model (errors are fine; the model must then be
// unchanged, so the harness keeps going as live operations would). Afterwards:
//   - the model is self-consistent (owners, counts, parent/clone links, no cycles);
//   - its checkpoint records rebuild an identical model and fit their pages;
//   - every decoded record re-encodes to bytes that decode to the same record.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "blob/format.h"
#include "blob/model.h"
#include "blob/records.h"

namespace sluice::fuzz {
namespace {

using namespace sluice::blob;

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "records_fuzz: BROKEN PROMISE: %s\n", what.c_str());
  std::abort();
}

std::string describe(const Record& r) {
  return fmt::format("type {} id {} value {} parent {} flags {} count {} cluster {} internal {} name {}:{} data {} "
                     "clusters {}",
                     static_cast<unsigned>(r.type), r.id, r.value, r.parent, r.flags, r.count, r.cluster, r.internal,
                     r.name.size(), r.name, r.data.size(), r.clusters.size());
}

bool same(const Record& a, const Record& b) {
  return a.type == b.type && a.id == b.id && a.value == b.value && a.parent == b.parent && a.flags == b.flags &&
         a.count == b.count && a.cluster == b.cluster && a.internal == b.internal && a.name == b.name &&
         a.data == b.data && a.clusters == b.clusters;
}

// The model's invariants, recomputed from scratch.
void check_model(const Model& m, const char* when) {
  auto fail = [&](const std::string& why) { broken(fmt::format("model {} : {}", when, why)); };
  const uint32_t n = m.num_clusters();
  std::vector<uint64_t> seen(n, 0);
  uint64_t owned = 0;
  for (const auto& entry : m.blobs()) {
    const uint64_t id = entry.first;
    const BlobMeta* b = entry.second.get();  // (clang 14 cannot capture structured bindings)
    if (id == 0 || b->id != id) fail(fmt::format("blob key {} holds id {}", id, b->id));
    if (id >= m.next_id()) fail(fmt::format("blob {} not below next id {}", id, m.next_id()));
    uint64_t allocated = 0;
    b->extents.for_each([&](uint64_t i, uint32_t v) {
      ++allocated;
      const uint32_t c = v - 1;
      if (i >= b->size) fail(fmt::format("blob {} maps index {} beyond size {}", id, i, b->size.load()));
      if (c >= n) fail(fmt::format("blob {} maps cluster {} past {}", id, c, n));
      if (seen[c]) fail(fmt::format("cluster {} mapped by {} and {}", c, seen[c], id));
      seen[c] = id;
      if (m.owner(c) != id) fail(fmt::format("cluster {} owner {} but blob {} maps it", c, m.owner(c), id));
      if (m.dirty(c)) fail(fmt::format("owned cluster {} is dirty", c));
    });
    if (allocated != b->allocated) fail(fmt::format("blob {} counts {} maps {}", id, b->allocated, allocated));
    owned += allocated;
    if (b->parent) {
      auto it = m.blobs().find(b->parent);
      if (it == m.blobs().end()) fail(fmt::format("blob {} parent {} missing", id, b->parent));
      const auto& cl = it->second->clones;
      if (std::count(cl.begin(), cl.end(), id) != 1) fail(fmt::format("parent {} does not list clone {} once", b->parent, id));
      if (b->parent_meta.load() != it->second.get()) fail(fmt::format("blob {} parent_meta is stale", id));
      // No cycles: the chain up from here ends within the number of blobs.
      size_t steps = 0;
      for (uint64_t p = b->parent; p; p = m.blobs().at(p)->parent)
        if (++steps > m.blobs().size() || p == id) fail(fmt::format("blob {} parent chain loops", id));
    } else if (b->parent_meta.load() != nullptr) {
      fail(fmt::format("blob {} has no parent but a parent_meta", id));
    }
    std::set<uint64_t> uniq(b->clones.begin(), b->clones.end());
    if (uniq.size() != b->clones.size()) fail(fmt::format("blob {} lists a clone twice", id));
    for (uint64_t c : b->clones) {
      auto it = m.blobs().find(c);
      if (it == m.blobs().end() || it->second->parent != id) fail(fmt::format("blob {} lists clone {} which is not", id, c));
    }
  }
  uint64_t dirty_unowned = 0;
  for (uint32_t c = 0; c < n; ++c) {
    if (m.owner(c) != 0 && seen[c] == 0) fail(fmt::format("cluster {} owned by {} but unmapped", c, m.owner(c)));
    if (m.owner(c) == 0 && m.dirty(c)) ++dirty_unowned;
  }
  if (n - owned != m.free_clusters()) fail(fmt::format("free {} but {} of {} unowned", m.free_clusters(), n - owned, n));
  if (dirty_unowned != m.dirty_unowned()) fail(fmt::format("dirty_unowned {} but counted {}", m.dirty_unowned(), dirty_unowned));
  if (m.super_blob() && !m.blobs().count(m.super_blob())) fail(fmt::format("super blob {} missing", m.super_blob()));
}

// The model's counters, as text (cheap).
std::string fingerprint(const Model& m) {
  return fmt::format("next {} super {} free {} dirty {} blobs {}", m.next_id(), m.super_blob(), m.free_clusters(),
                     m.dirty_unowned(), m.blobs().size());
}

// Everything about a model, as text.
std::string summarize(const Model& m) {
  std::string s = fmt::format("next {} super {} free {} dirty {}\n", m.next_id(), m.super_blob(), m.free_clusters(),
                              m.dirty_unowned());
  for (const auto& [id, b] : m.blobs()) {
    std::vector<uint64_t> clones = b->clones;
    std::sort(clones.begin(), clones.end());
    s += fmt::format("blob {} flags {} parent {} size {} alloc {} clones {}\n", id, b->flags, b->parent, b->size.load(),
                     b->allocated, clones.size());
    for (uint64_t c : clones) s += fmt::format(" {}", c);
    b->extents.for_each([&](uint64_t i, uint32_t v) { s += fmt::format(" {}:{}", i, v); });
    for (int k = 0; k < 2; ++k)
      for (const auto& [name, value] : b->xattrs[k]) s += fmt::format(" x{}[{}]={}", k, name, value);
    s += '\n';
  }
  for (uint32_t c : m.dirty_unowned_list()) s += fmt::format("d{} ", c);
  return s;
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::blob;
  using sluice::fuzz::broken;
  if (size == 0) return 0;
  const uint32_t clusters = data[0];
  std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);

  std::vector<Record> records;
  sluice::Status st = decode_records(payload, records);
  if (!st.ok() && st.code() != sluice::Errc::corrupt) broken("decode failed with " + st.to_string());

  // Encoding round trip of what was decoded.
  for (const Record& r : records) {
    std::string enc;
    encode_record(r, enc);
    if (enc.size() != encoded_size(r)) broken("encoded_size disagrees with encode_record");
    std::vector<Record> back;
    sluice::Status dst = decode_records(enc, back);
    if (!dst.ok() || back.size() != 1 || !sluice::fuzz::same(r, back[0]))
      broken("record does not survive encode/decode: " + sluice::fuzz::describe(r) + " (" + dst.to_string() + ")");
  }

  // A failed apply must leave the model as it was; comparing whole summaries costs
  // O(model) per record, so only small inputs get the full comparison.
  const bool full = records.size() <= 64;
  Model m(clusters);
  for (const Record& r : records) {
    const std::string before = full ? sluice::fuzz::summarize(m) : sluice::fuzz::fingerprint(m);
    sluice::Status ast = m.apply(r);
    if (!ast.ok()) {
      if (ast.message().empty()) broken("apply failed without a message");
      if ((full ? sluice::fuzz::summarize(m) : sluice::fuzz::fingerprint(m)) != before)
        broken("a failed apply changed the model: " + sluice::fuzz::describe(r));
    }
  }
  sluice::fuzz::check_model(m, "after apply");
  (void)m.find_clean_free(clusters ? data[size - 1] % clusters : 0);

  // The checkpoint of this state rebuilds it exactly and fits its pages.
  auto cp = m.checkpoint_records();
  Model rebuilt(clusters);
  for (const Record& r : cp) {
    sluice::Status ast = rebuilt.apply(r);
    if (!ast.ok()) broken("checkpoint record refused on rebuild: " + ast.to_string() + ": " + sluice::fuzz::describe(r));
  }
  sluice::fuzz::check_model(rebuilt, "rebuilt from its checkpoint");
  const std::string a = sluice::fuzz::summarize(m), b = sluice::fuzz::summarize(rebuilt);
  if (a != b) broken("checkpoint does not rebuild the model:\n--- model\n" + a + "\n--- rebuilt\n" + b);
  std::vector<Record> decoded;
  for (const std::string& page : pack_records(cp, kPagePayload)) {
    if (page.size() > kPagePayload) broken("a packed page exceeds the payload size");
    if (!decode_records(page, decoded).ok()) broken("a packed checkpoint page does not decode");
  }
  if (decoded.size() != cp.size()) broken("packed checkpoint lost records");
  return 0;
}
