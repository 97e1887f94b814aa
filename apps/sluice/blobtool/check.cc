#include "blobtool/check.h"

#include <algorithm>

#include <fmt/format.h>

#include "base/size.h"
#include "blob/blob.h"
#include "blob/super_rebuild.h"
#include "blobtool/dump.h"

namespace sluice::blobtool {

using blob::kPageSize;

size_t CheckReport::problems() const {
  size_t n = 0;
  for (const auto& f : findings) n += f.severity == Severity::damage;
  return n;
}

namespace {

void add(CheckReport& r, Severity s, std::string area, std::string message) {
  r.findings.push_back({s, std::move(area), std::move(message)});
}

std::string copy_name(int c) { return fmt::format("super block copy {} (page {}, offset {})", copy_letter(c), c, c * kPageSize); }

void check_super(CheckReport& r) {
  const MetadataScan& s = r.scan;
  for (const auto& c : s.copies) {
    if (c.valid) {
      add(r, Severity::ok, "super",
          fmt::format("{}: valid, generation {}{}", copy_name(c.copy), c.fields.generation, c.in_use ? ", in use" : ""));
      continue;
    }
    r.super_damaged[c.copy] = true;
    std::string msg = fmt::format("{}: {}", copy_name(c.copy), c.error);
    if (s.in_use >= 0) msg += fmt::format("; copy {} is used", copy_letter(s.in_use));
    add(r, Severity::damage, "super", std::move(msg));
  }
  if (s.in_use < 0) return;
  const SuperCopy& use = s.copies[s.in_use];
  const SuperCopy& other = s.copies[1 - s.in_use];
  if (other.valid && other.fields.uuid != use.fields.uuid) {
    r.super_damaged[other.copy] = true;
    add(r, Severity::damage, "super",
        fmt::format("{} belongs to another store ({}, the copy in use says {})", copy_name(other.copy),
                    blob::uuid_string(other.fields.uuid), blob::uuid_string(use.fields.uuid)));
  }
  if (use.fields.device_pages < s.device_pages)
    add(r, Severity::info, "device",
        fmt::format("the device has grown to {} pages since the store was made on {}; the extra space is unused",
                    s.device_pages, use.fields.device_pages));
}

// A damaged copy whose own fields say it is newer: a torn super block write during a
// checkpoint leaves that, and the copy in use is then right (the checkpoint never took
// effect, so nothing was written after it). But if the journal, replayed from the copy in
// use, runs past the damaged copy's journal head, that copy was durable and relied on, and
// the one in use describes an older checkpoint: what that newer checkpoint folded in
// without journaling it cannot be told apart any more.
void check_newer_damaged_copy(CheckReport& r) {
  const MetadataScan& s = r.scan;
  const SuperCopy& use = s.copies[s.in_use];
  const SuperCopy& other = s.copies[1 - s.in_use];
  if (other.valid || !other.has_magic || other.fields.uuid != use.fields.uuid ||
      other.fields.generation <= use.fields.generation || other.fields.journal_head_seq < use.fields.journal_head_seq)
    return;
  if (s.journal->stop_seq <= other.fields.journal_head_seq) {
    add(r, Severity::info, "super",
        fmt::format("damaged copy {} says it is newer (generation {}, checkpoint seq {}): a super block write torn by "
                    "a crash during a checkpoint leaves this, and then copy {} is right",
                    copy_letter(other.copy), other.fields.generation, other.fields.ckpt_seq, copy_letter(use.copy)));
    return;
  }
  r.super_ambiguous = true;
  add(r, Severity::damage, "super",
      fmt::format("damaged copy {} says it is newer (generation {}, journal head seq {}), and the journal replayed "
                  "from copy {} holds batches written after that (seq {}..{}): copy {} was in use, so copy {} may "
                  "describe an older state than the last checkpoint",
                  copy_letter(other.copy), other.fields.generation, other.fields.journal_head_seq,
                  copy_letter(use.copy), other.fields.journal_head_seq, s.journal->stop_seq - 1,
                  copy_letter(other.copy), copy_letter(use.copy)));
}

void check_checkpoint(CheckReport& r) {
  const auto& ck = *r.scan.checkpoint;
  const std::string what = fmt::format("checkpoint seq {} (slot {}, pages {}..{})", ck.seq, ck.slot, ck.first_page,
                                       ck.first_page + ck.pages_expected - 1);
  if (ck.valid) {
    add(r, Severity::ok, "checkpoint", fmt::format("{}: {} page(s), {} records, checksums good", what, ck.pages.size(), ck.records));
    return;
  }
  r.checkpoint_damaged = true;
  for (const auto& p : ck.pages) {
    if (p.valid && p.records_ok) continue;
    add(r, Severity::damage, "checkpoint",
        fmt::format("{}: page {} (offset {}, page {} of the checkpoint): {}", what, p.page, p.page * kPageSize,
                    p.position, p.error.empty() ? "records: " + p.records_error : p.error));
  }
}

void check_journal(CheckReport& r) {
  const auto& j = *r.scan.journal;
  r.replay_batches = j.batches.size();
  r.replay_pages = j.replay_pages;
  if (j.batches.empty())
    add(r, Severity::ok, "journal", fmt::format("journal: empty (head seq {}, ring position {})", j.head_seq, j.head_pos));
  else
    add(r, Severity::info, "journal",
        fmt::format("journal: {} batch(es), {} page(s) to replay from seq {} to {}", j.batches.size(), j.replay_pages,
                    j.head_seq, j.stop_seq - 1));
  r.skip_ahead = j.valid_ahead > 0;
  if (j.stop_kind == StopKind::torn) {
    r.torn_tail = true;
    add(r, Severity::info, "journal",
        fmt::format("journal: replay stops at a torn batch at seq {} (page {}): {} — normal after a crash: that batch "
                    "was never acknowledged; recovery ignores it and the next commit overwrites it",
                    j.stop_seq, j.start_page + j.stop_position, j.stop_reason));
  }
  if (j.stop_kind == StopKind::damaged) {
    r.journal_damaged = true;
    for (const auto& d : j.damage) add(r, Severity::damage, "journal", "journal: " + d);
  }
}

void check_loaded(CheckReport& r, const Device& dev) {
  blob::LoadOptions lo;
  lo.read_only = true;
  auto bs = blob::Blobstore::load(dev.bdev_name(), lo);
  if (!bs.ok()) {
    r.load_error = bs.status().message();
    // Already explained by damage found above, or something the raw scan did not see.
    const bool explained = r.checkpoint_damaged || r.problems() > 0;
    add(r, explained ? Severity::info : Severity::damage, "load",
        fmt::format("the store cannot be loaded: {}", r.load_error));
    return;
  }
  r.loaded = true;
  blob::Blobstore& store = **bs;
  const auto si = store.store_info();
  r.blobs = si.blobs;
  r.total_clusters = si.total_clusters;
  r.free_clusters = si.free_clusters;
  r.dirty_clusters = si.dirty_clusters;
  r.inconsistencies = store.check();
  for (const auto& p : r.inconsistencies) add(r, Severity::damage, "consistency", "consistency: " + p);
  if (si.journal_pages_used != r.replay_pages)
    add(r, Severity::damage, "load",
        fmt::format("the store replayed {} journal page(s) where this scan found {}", si.journal_pages_used,
                    r.replay_pages));
  // The next checkpoint (recovery writes one, so does unload) must fit a slot.
  const uint64_t need = store.checkpoint_pages_needed();
  const uint64_t slot = si.checkpoint_pages;
  if (need > slot)
    add(r, Severity::damage, "capacity",
        fmt::format("metadata area full: the state needs {} checkpoint pages and a slot holds {}, so no checkpoint "
                    "can be written (a read-write load, recovery and unload fail with no_space)",
                    need, slot));
  else
    add(r, Severity::ok, "capacity", fmt::format("checkpoint space: the state needs {} of {} pages per slot", need, slot));
  if (r.inconsistencies.empty())
    add(r, Severity::ok, "consistency",
        fmt::format("consistency: {} blob(s); {} clusters, {} free{}; every cluster owned once, counts, parents and "
                    "sizes agree",
                    si.blobs, si.total_clusters, si.free_clusters,
                    r.dirty_clusters ? fmt::format(" ({} of them dirty: reserved or freed, zeroed before reuse)", r.dirty_clusters) : ""));
  (*bs)->abandon();  // read-only: nothing to write either way
}

}  // namespace

Result<CheckReport> run_check(const Device& dev) {
  CheckReport r;
  r.spec = dev.spec();
  auto scan = blob::scan_metadata(dev.bdev_name());
  if (!scan.ok()) return scan.status();
  r.scan = std::move(scan.value());
  if (r.scan.in_use < 0) {
    Status why = r.scan.unusable();
    // Not a blobstore, or a newer one; but a store whose super blocks are both gone is still
    // there when its checkpoint is, and that is damage to report, not a foreign device.
    r.checkpoint_survives = blob::checkpoint_survives(dev.bdev_name());
    if (why.code() != Errc::corrupt && !(why.code() == Errc::not_found && r.checkpoint_survives)) return why;
    check_super(r);
    add(r, Severity::damage, "super",
        r.checkpoint_survives
            ? fmt::format("super block damaged (both copies); a checkpoint survives: run `sluice blob repair -d {}` "
                          "to rebuild the super block from it",
                          r.spec)
            : "no usable super block copy: the store cannot be located on the device");
    return r;
  }
  check_super(r);
  check_checkpoint(r);
  check_journal(r);
  check_newer_damaged_copy(r);
  check_loaded(r, dev);
  if (r.needs_recovery())
    add(r, Severity::info, "recovery",
        fmt::format("the store needs recovery (it was not unloaded cleanly): {} journal batch(es) to replay{}{}; "
                    "`sluice blob repair` or any read-write load does it",
                    r.replay_batches, r.skip_ahead ? ", unreplayed pages to move past" : "",
                    r.dirty_clusters ? fmt::format(", {} dirty cluster(s) to zero", r.dirty_clusters) : ""));
  return r;
}

std::string check_text(const CheckReport& r) {
  std::string o;
  const MetadataScan& s = r.scan;
  if (const auto* sb = s.super())
    o += fmt::format("checking {}: blobstore {}, format {}, {} clusters of {}\n", r.spec, blob::uuid_string(sb->uuid),
                     s.copies[s.in_use].version, sb->num_clusters, format_size(sb->cluster_size));
  else
    o += fmt::format("checking {}\n", r.spec);
  for (const auto& f : r.findings) {
    const char* tag = f.severity == Severity::ok ? "ok    " : f.severity == Severity::info ? "info  " : "DAMAGE";
    o += fmt::format("{} {}\n", tag, f.message);
  }
  const size_t n = r.problems();
  if (n == 0)
    o += r.needs_recovery() ? "result: clean (needs recovery)\n" : "result: clean\n";
  else
    o += fmt::format("result: {} problem(s) found\n", n);
  return o;
}

nlohmann::json check_json(const CheckReport& r) {
  nlohmann::json findings = nlohmann::json::array(), problems = nlohmann::json::array();
  for (const auto& f : r.findings) {
    const char* sev = f.severity == Severity::ok ? "ok" : f.severity == Severity::info ? "info" : "damage";
    findings.push_back({{"severity", sev}, {"area", f.area}, {"message", f.message}});
    if (f.severity == Severity::damage) problems.push_back(f.message);
  }
  nlohmann::json j = {{"device", r.spec},
                      {"clean", r.problems() == 0},
                      {"needs_recovery", r.needs_recovery()},
                      {"problems", problems},
                      {"findings", findings},
                      {"super_damaged", {r.super_damaged[0], r.super_damaged[1]}},
                      {"checkpoint_damaged", r.checkpoint_damaged},
                      {"journal_damaged", r.journal_damaged},
                      {"loaded", r.loaded},
                      {"replay", {{"batches", r.replay_batches}, {"pages", r.replay_pages}, {"torn_tail", r.torn_tail}}}};
  if (r.loaded)
    j["state"] = {{"blobs", r.blobs},
                  {"total_clusters", r.total_clusters},
                  {"free_clusters", r.free_clusters},
                  {"dirty_clusters", r.dirty_clusters}};
  if (const auto* sb = r.scan.super()) j["uuid"] = blob::uuid_string(sb->uuid);
  return j;
}

}  // namespace sluice::blobtool
