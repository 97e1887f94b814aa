#include "blob_workload.h"

#include <functional>
#include <random>

#include <fmt/format.h>

namespace sluice::blob {

InitOptions small_store() {
  InitOptions o;
  o.cluster_size = 64 * 1024;
  o.checkpoint_bytes = 64 * 1024;
  o.journal_bytes = 64 * 1024;
  return o;
}

std::string canonical(Blobstore& bs) {
  std::string s;
  for (BlobId id : bs.list()) {
    auto i = bs.info(id);
    if (!i.ok()) return "error: " + i.status().to_string();
    s += fmt::format("blob {} size={} alloc={} thin={} ro={} snap={} parent={}", id, i->size_clusters,
                     i->allocated_clusters, i->thin, i->read_only, i->snapshot, i->parent);
    for (auto& [k, v] : i->xattrs) s += fmt::format(" {}={:x}", k, std::hash<std::string>{}(v));
    for (auto& [k, v] : i->internal_xattrs) s += fmt::format(" _{}={}", k, v);
    s += "\n";
  }
  auto sb = bs.super_blob();
  s += fmt::format("super={}\n", sb.ok() ? *sb : 0);
  return s;
}


Run run_workload(Blobstore& bs, uint64_t workload_seed, int ops, bool stop_on_device_failure) {
  Run run;
  run.states.push_back(canonical(bs));
  std::mt19937_64 rng(workload_seed);
  auto pick = [&](const std::vector<BlobId>& v) { return v[rng() % v.size()]; };
  for (int k = 0; k < ops; ++k) {
    std::vector<BlobId> all = bs.list(), writable, snaps, clones;
    for (BlobId id : all) {
      auto i = bs.info(id);
      if (!i.ok()) continue;
      if (!i->read_only) writable.push_back(id);
      if (i->snapshot) snaps.push_back(id);
      if (i->parent) clones.push_back(id);
    }
    Status st;
    bool synced = false;
    const int choice = static_cast<int>(rng() % 100);
    if (choice < 18 || all.empty()) {
      CreateOptions co;
      co.thin = rng() % 2;
      co.size_clusters = co.thin ? 1 + rng() % 200 : 1 + rng() % 4;
      co.xattrs["name"] = fmt::format("b{}", k);
      st = bs.create(co).status();
    } else if (choice < 30) {
      st = bs.sync_md();
      synced = true;
    } else if (choice < 42 && !writable.empty()) {
      st = bs.resize(pick(writable), rng() % 6);
    } else if (choice < 56) {
      st = bs.set_xattr(pick(all), fmt::format("k{}", rng() % 3), std::string(1 + rng() % 600, 'a' + k % 26));
    } else if (choice < 60) {
      st = bs.remove_xattr(pick(all), fmt::format("k{}", rng() % 3));
    } else if (choice < 70) {
      st = bs.remove(pick(all));
    } else if (choice < 78 && !writable.empty()) {
      st = bs.snapshot(pick(writable)).status();
    } else if (choice < 86 && !snaps.empty()) {
      st = bs.clone(pick(snaps)).status();
    } else if (choice < 90 && !clones.empty()) {
      st = bs.inflate(pick(clones));
    } else if (choice < 94 && !clones.empty()) {
      st = bs.decouple(pick(clones));
    } else if (choice < 97) {
      st = bs.set_super_blob(pick(all));
    } else {
      st = bs.set_read_only(pick(all));
    }
    if (is_device_failure(st)) {
      run.stopped_by_failure = true;
      if (stop_on_device_failure) return run;
      continue;
    }
    if (!st.ok() && st.code() != Errc::busy && st.code() != Errc::permission && st.code() != Errc::invalid_argument &&
        st.code() != Errc::not_found && st.code() != Errc::no_space) {
      run.unexpected = st.to_string();
      return run;
    }
    run.states.push_back(canonical(bs));
    if (synced) run.last_synced = run.states.size() - 1;
  }
  Status st = bs.sync_md();
  if (is_device_failure(st)) {
    run.stopped_by_failure = true;
    return run;
  }
  run.states.push_back(canonical(bs));
  run.last_synced = run.states.size() - 1;
  return run;
}

}  // namespace sluice::blob
