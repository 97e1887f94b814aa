#include "blobtool/repair.h"

#include <fmt/format.h>

#include "base/size.h"
#include "blob/blob.h"
#include "blob/super_rebuild.h"

namespace sluice::blobtool {
namespace {

RepairOutcome refuse(std::string why) {
  RepairOutcome o;
  o.refused = true;
  o.message = "refusing to repair, nothing was written: " + std::move(why);
  return o;
}

// Why the repair cannot go ahead, or empty.
std::string blocker(const CheckReport& r, const RepairOptions& opts) {
  const MetadataScan& s = r.scan;
  if (s.in_use < 0)
    return "neither super block copy is valid, so the store's layout and its current checkpoint cannot be known "
           "for certain";
  if (r.checkpoint_damaged) {
    const auto& ck = *s.checkpoint;
    const auto& other = *s.other_slot;
    std::string older = other.first.valid
                            ? fmt::format("slot {} holds checkpoint seq {}, an older state", other.slot, other.first.seq)
                            : fmt::format("slot {} holds no usable checkpoint either ({})", other.slot, other.first.error);
    return fmt::format("the active checkpoint (seq {}, slot {}) is damaged and it is the only complete copy of the "
                       "metadata (the journal holds only what changed since); {}, and falling back to it would "
                       "silently lose every change made after it",
                       ck.seq, ck.slot, older);
  }
  if (r.super_ambiguous && !opts.force)
    return fmt::format("super block copy {} is damaged but was the newer one, relied on before it was damaged: copy {} "
                       "may describe an older state; rerun with --force to recover from copy {} anyway",
                       copy_letter(1 - s.in_use), copy_letter(s.in_use), copy_letter(s.in_use));
  if (r.journal_damaged && !opts.force)
    return fmt::format("the journal is damaged: {}; recovery would drop those changes; rerun with --force to accept that",
                       r.scan.journal->damage.back());
  if (!r.loaded) return fmt::format("the store does not load: {}", r.load_error);
  if (!r.inconsistencies.empty())
    return fmt::format("the metadata loads but is inconsistent ({} problem(s), first: {}); which side is right cannot "
                       "be decided",
                       r.inconsistencies.size(), r.inconsistencies.front());
  // Anything else reported as damage is not something repair knows how to fix.
  for (const auto& f : r.findings) {
    if (f.severity != Severity::damage) continue;
    if (f.area == "super" || (f.area == "journal" && opts.force)) continue;
    return f.message;
  }
  return {};
}

}  // namespace

Result<RepairOutcome> run_repair(const Device& dev, const RepairOptions& opts,
                                 const std::function<void(const std::string&)>& print) {
  auto before = run_check(dev);
  if (!before.ok()) return before.status();
  bool rebuilt = false;
  if (before->scan.in_use < 0 && before->checkpoint_survives) {
    for (const auto& f : before->findings)
      if (f.severity != Severity::ok) print(fmt::format("found: {}", f.message));
    auto sb = blob::plan_super_rebuild(dev.bdev_name(), opts.cluster_size);
    if (!sb.ok()) return refuse(sb.status().message());
    print(fmt::format("{}: rebuild both super block copies of store {} from checkpoint seq {} (slot {}), clusters of {}; "
                      "the journal head goes past every journal page (seq {}): none is replayed",
                      opts.dry_run ? "would" : "repair", blob::uuid_string(sb->uuid), sb->ckpt_seq, sb->active_ckpt,
                      format_size(sb->cluster_size), sb->journal_head_seq));
    if (opts.dry_run) {
      RepairOutcome out;
      out.message = "dry run: the super block would be rebuilt, nothing was written";
      return out;
    }
    if (Status st = blob::write_rebuilt_super(dev.bdev_name(), *sb); !st.ok())
      return Status(st.code(), fmt::format("writing the rebuilt super block: {}", st.message()));
    rebuilt = true;
    before = run_check(dev);  // and go on as for any store: recovery, then a clean unload
    if (!before.ok()) return before.status();
  }
  const CheckReport& r = *before;
  for (const auto& f : r.findings)
    if (f.severity != Severity::ok) print(fmt::format("found: {}", f.message));
  if (std::string why = blocker(r, opts); !why.empty()) return refuse(why);

  const MetadataScan& s = r.scan;
  std::vector<std::string> plan;
  for (int c = 0; c < 2; ++c)
    if (r.super_damaged[c])
      plan.push_back(fmt::format("rewrite super block copy {} (page {}) from the state copy {} describes", copy_letter(c), c,
                                 copy_letter(s.in_use)));
  if (r.replay_batches > 0)
    plan.push_back(fmt::format("replay {} journal batch(es) ({} page(s)) into a fresh checkpoint", r.replay_batches,
                               r.replay_pages));
  if (r.skip_ahead)
    plan.push_back(fmt::format("move the journal head past the {} unreplayed page(s) at or after seq {}",
                               s.journal->valid_ahead, s.journal->stop_seq));
  if (r.torn_tail && !plan.empty())
    plan.push_back(fmt::format("leave out the torn batch at seq {} (never acknowledged)", s.journal->stop_seq));
  if (r.journal_damaged)
    plan.push_back(fmt::format("DISCARD what the journal holds past seq {} (--force): {}", s.journal->stop_seq,
                               s.journal->damage.back()));
  if (r.super_ambiguous)
    plan.push_back(fmt::format("DISCARD the newer state damaged copy {} described (--force)", copy_letter(1 - s.in_use)));
  if (r.dirty_clusters > 0) plan.push_back(fmt::format("zero {} dirty cluster(s) (reserved or freed before the crash)", r.dirty_clusters));
  RepairOutcome out;
  out.changed = rebuilt;
  if (plan.empty()) {
    out.clean_after = r.problems() == 0;
    out.message = rebuilt ? "repaired: the super block was rebuilt; check is clean" : "nothing to repair: the store is clean";
    return out;
  }
  for (const auto& p : plan) print(fmt::format("{}: {}", opts.dry_run ? "would" : "repair", p));
  if (opts.dry_run) {
    out.message = fmt::format("dry run: {} action(s) planned, nothing was written", plan.size());
    return out;
  }

  print("repair: loading read-write (recovery), then unloading cleanly (checkpoint and super block)");
  {
    auto bs = blob::Blobstore::load(dev.bdev_name());
    if (!bs.ok()) return Status(bs.status().code(), fmt::format("recovery failed: {}", bs.status().message()));
    out.changed = true;
    if (Status st = (*bs)->unload(); !st.ok()) {
      (*bs)->abandon();
      return Status(st.code(), fmt::format("the final checkpoint failed: {}", st.message()));
    }
  }

  auto after = run_check(dev);
  if (!after.ok()) return Status(after.status().code(), fmt::format("after repair: {}", after.status().message()));
  for (const auto& f : after->findings)
    if (f.severity != Severity::ok) print(fmt::format("after: {}", f.message));
  const auto& sc = after->scan;
  for (const auto& c : sc.copies)
    if (c.valid && r.super_damaged[c.copy])
      print(fmt::format("repair: super block copy {} rewritten (generation {})", copy_letter(c.copy), c.fields.generation));
  out.clean_after = after->problems() == 0 && !after->needs_recovery();
  if (out.clean_after) out.message = fmt::format("repaired: {} action(s) done; check is clean", plan.size());
  else if (after->problems() > 0) out.message = fmt::format("repair done, but check still finds {} problem(s)", after->problems());
  else out.message = "repair done, but the store still needs recovery";
  return out;
}

}  // namespace sluice::blobtool
