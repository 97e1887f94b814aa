#include "blobtool/dump.h"

#include <fmt/format.h>

#include "base/size.h"
#include "blob/blob.h"
#include "blobtool/text.h"

namespace sluice::blobtool {

using blob::kPageSize;

std::string stop_kind_name(StopKind k) {
  switch (k) {
    case StopKind::end: return "end";
    case StopKind::torn: return "torn";
    case StopKind::damaged: return "damaged";
  }
  return "?";
}

namespace {

std::string size_text(uint64_t bytes) { return fmt::format("{} ({})", bytes, format_size(bytes)); }

void super_text(std::string& o, const MetadataScan& s, const SuperCopy& c) {
  o += fmt::format("super block copy {} (page {}, offset {}): ", copy_letter(c.copy), c.copy, static_cast<uint64_t>(c.copy) * kPageSize);
  if (c.valid) o += c.in_use ? "valid, in use\n" : "valid, not in use (older generation)\n";
  else o += fmt::format("INVALID: {}\n", c.error);
  if (!c.has_magic) return;
  const blob::SuperBlock& f = c.fields;
  if (!c.valid) o += "  (fields as found, not trusted)\n";
  o += fmt::format("  magic SLUICEBS  version {}  crc {:#010x} (computed {:#010x})  generation {}\n", c.version,
                   c.crc_stored, c.crc_computed, f.generation);
  o += fmt::format("  uuid {}\n", blob::uuid_string(f.uuid));
  o += fmt::format("  page size {}  io unit {}  cluster size {}\n", f.page_size, f.io_unit, size_text(f.cluster_size));
  o += fmt::format("  device pages at init {}{}\n", f.device_pages,
                   f.device_pages == s.device_pages ? "" : fmt::format(" (the device now has {})", s.device_pages));
  o += fmt::format("  checkpoint slots: {} pages each: slot 0 at page 2, slot 1 at page {}\n", f.ckpt_pages,
                   2 + uint64_t{f.ckpt_pages});
  o += fmt::format("  journal ring: pages {}..{} ({} pages)\n", f.journal_start, f.journal_start + f.journal_pages - 1,
                   f.journal_pages);
  o += fmt::format("  data: from page {} (offset {}), {} clusters\n", f.data_start, f.data_start * kPageSize,
                   f.num_clusters);
  o += fmt::format("  active checkpoint: slot {}, seq {}\n", f.active_ckpt, f.ckpt_seq);
  o += fmt::format("  flags {:#x}{}\n", c.raw_flags, f.clean ? " (clean)" : "");
  o += fmt::format("  journal head: seq {} at ring position {} (page {})\n", f.journal_head_seq, f.journal_head_pos,
                   f.journal_start + f.journal_head_pos);
}

// "page 2 (offset 8192)"
std::string where(const PageReport& p) { return fmt::format("page {} (offset {})", p.page, p.page * kPageSize); }

void page_text(std::string& o, const PageReport& p, bool journal, bool with_records) {
  o += fmt::format("  {} [{} {}]: ", where(p), journal ? "ring position" : "checkpoint page", p.position);
  o += p.valid && p.error.empty() ? "valid" : fmt::format("INVALID: {}", p.error);
  if (p.has_magic) {
    if (journal)
      o += fmt::format("\n      seq {}  batch at seq {} ({} page{})", p.seq, p.aux, p.count, p.count == 1 ? "" : "s");
    else
      o += fmt::format("\n      seq {}  page {} of {}", p.seq, p.aux, p.count);
    o += fmt::format("  payload {} bytes  crc {:#010x}", p.payload_len, p.crc_stored);
    if (p.crc_stored != p.crc_computed) o += fmt::format(" (computed {:#010x})", p.crc_computed);
    if (p.records_ok) o += fmt::format("  {} record{}", p.records.size(), p.records.size() == 1 ? "" : "s");
    else if (!p.records_error.empty()) o += fmt::format("  records: {}", p.records_error);
  }
  o += '\n';
  if (with_records)
    for (const auto& r : p.records) o += fmt::format("      {}\n", record_text(r));
}

nlohmann::json page_json(const PageReport& p, bool journal) {
  nlohmann::json j = {{"page", p.page},
                      {"offset", p.page * kPageSize},
                      {"position", p.position},
                      {"valid", p.valid && p.error.empty()},
                      {"error", p.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.error)},
                      {"has_magic", p.has_magic}};
  if (p.has_magic) {
    j["crc_stored"] = p.crc_stored;
    j["crc_computed"] = p.crc_computed;
    j["uuid"] = blob::uuid_string(p.uuid);
    j["seq"] = p.seq;
    j[journal ? "batch_seq" : "index"] = p.aux;
    j[journal ? "batch_pages" : "pages"] = p.count;
    j["payload_len"] = p.payload_len;
    j["records_ok"] = p.records_ok;
    if (!p.records_error.empty()) j["records_error"] = p.records_error;
    nlohmann::json recs = nlohmann::json::array();
    for (const auto& r : p.records) recs.push_back(record_json(r));
    j["records"] = recs;
  }
  return j;
}

nlohmann::json super_json(const SuperCopy& c) {
  nlohmann::json j = {{"copy", std::string(1, copy_letter(c.copy))},
                      {"page", c.copy},
                      {"offset", static_cast<uint64_t>(c.copy) * kPageSize},
                      {"has_magic", c.has_magic},
                      {"valid", c.valid},
                      {"in_use", c.in_use},
                      {"error", c.valid ? nlohmann::json(nullptr) : nlohmann::json(c.error)}};
  if (!c.has_magic) return j;
  const blob::SuperBlock& f = c.fields;
  j["version"] = c.version;
  j["crc_stored"] = c.crc_stored;
  j["crc_computed"] = c.crc_computed;
  j["generation"] = f.generation;
  j["uuid"] = blob::uuid_string(f.uuid);
  j["page_size"] = f.page_size;
  j["io_unit"] = f.io_unit;
  j["cluster_size"] = f.cluster_size;
  j["ckpt_pages"] = f.ckpt_pages;
  j["device_pages"] = f.device_pages;
  j["journal_start"] = f.journal_start;
  j["journal_pages"] = f.journal_pages;
  j["data_start"] = f.data_start;
  j["num_clusters"] = f.num_clusters;
  j["active_ckpt"] = f.active_ckpt;
  j["flags"] = c.raw_flags;
  j["clean"] = f.clean;
  j["ckpt_seq"] = f.ckpt_seq;
  j["journal_head_seq"] = f.journal_head_seq;
  j["journal_head_pos"] = f.journal_head_pos;
  return j;
}

nlohmann::json batches_json(const std::vector<JournalBatch>& bs) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& b : bs) a.push_back({{"seq", b.seq}, {"pages", b.pages}, {"records", b.records}});
  return a;
}

}  // namespace

LoadSummary load_summary(const std::string& bdev_name) {
  LoadSummary l;
  blob::LoadOptions lo;
  lo.read_only = true;
  auto bs = blob::Blobstore::load(bdev_name, lo);
  if (!bs.ok()) {
    l.error = bs.status().message();
    return l;
  }
  l.loaded = true;
  blob::Blobstore& store = **bs;
  const auto si = store.store_info();
  l.blobs = si.blobs;
  l.total_clusters = si.total_clusters;
  l.free_clusters = si.free_clusters;
  l.dirty_clusters = si.dirty_clusters;
  l.next_id = si.next_id;
  auto super = store.super_blob();
  l.super_blob = super.ok() ? *super : 0;
  l.journal_pages_replayed = si.journal_pages_used;
  (*bs)->abandon();  // loaded read-only: nothing to write
  return l;
}

std::string dump_text(const MetadataScan& s, const LoadSummary* load) {
  std::string o;
  const auto& g = s.geometry;
  o += fmt::format("device {}: {} blocks of {} bytes = {}, {} pages\n", s.spec, g.num_blocks, g.block_size,
                   size_text(g.size_bytes()), s.device_pages);
  for (const auto& c : s.copies) super_text(o, s, c);
  if (s.in_use < 0) {
    o += fmt::format("no valid super block copy: {}\n", s.unusable().message());
    return o;
  }
  const auto& ck = *s.checkpoint;
  o += fmt::format("\ncheckpoint seq {} in slot {} (pages {}..{}), named by copy {}: {} page(s), {} records: {}\n",
                   ck.seq, ck.slot, ck.first_page, ck.first_page + ck.slot_pages - 1, copy_letter(s.in_use),
                   ck.pages_expected, ck.records, ck.valid ? "valid" : "DAMAGED");
  for (const auto& p : ck.pages) page_text(o, p, false, true);
  const auto& other = *s.other_slot;
  o += fmt::format("other checkpoint slot {} (from page {}): ", other.slot, other.first_page);
  if (other.first.valid) o += fmt::format("checkpoint seq {}, {} page(s) (first page valid)\n", other.first.seq, other.first.count);
  else o += fmt::format("first page {}\n", other.first.error);

  const auto& j = *s.journal;
  o += fmt::format("\njournal ring: pages {}..{} ({} pages), head seq {} at ring position {} (page {})\n",
                   j.start_page, j.start_page + j.ring_pages - 1, j.ring_pages, j.head_seq, j.head_pos,
                   j.start_page + j.head_pos);
  for (const auto& p : j.pages) page_text(o, p, true, true);
  o += fmt::format("replay: {} batch(es), {} page(s); stops at seq {} (ring position {}): {} [{}]\n", j.batches.size(),
                   j.replay_pages, j.stop_seq, j.stop_position, j.stop_reason, stop_kind_name(j.stop_kind));
  for (const auto& d : j.damage) o += fmt::format("DAMAGE: {}\n", d);
  o += fmt::format("rest of the ring: {} stale page(s) (earlier laps or another store), {} never written, {} rejected, "
                   "{} intact page(s) of later batches\n",
                   j.stale_pages, j.blank_pages, j.bad_pages, j.later_intact_pages);
  for (const auto& b : j.later_batches)
    o += fmt::format("  later batch at seq {}: {} page(s) found, {} records\n", b.seq, b.pages, b.records);
  if (!j.ring.empty()) {
    o += "every ring page:\n";
    for (const auto& p : j.ring) page_text(o, p, true, false);
  }
  if (load && load->loaded)
    o += fmt::format("\nread-only load (checkpoint + {} journal page(s)): {} blob(s), next id {}, super blob {}; {} "
                     "clusters, {} free, {} dirty\n",
                     load->journal_pages_replayed, load->blobs, load->next_id,
                     load->super_blob ? fmt::format("{}", load->super_blob) : "none", load->total_clusters,
                     load->free_clusters, load->dirty_clusters);
  else if (load)
    o += fmt::format("\nread-only load: FAILED: {}\n", load->error);
  return o;
}

nlohmann::json dump_json(const MetadataScan& s, const LoadSummary* load) {
  const auto& g = s.geometry;
  nlohmann::json out = {
      {"device",
       {{"spec", s.spec}, {"block_size", g.block_size}, {"blocks", g.num_blocks}, {"bytes", g.size_bytes()},
        {"pages", s.device_pages}}},
      {"page_size", kPageSize},
  };
  out["super"] = nlohmann::json::array({super_json(s.copies[0]), super_json(s.copies[1])});
  out["in_use"] = s.in_use < 0 ? nlohmann::json(nullptr) : nlohmann::json(std::string(1, copy_letter(s.in_use)));
  if (s.in_use < 0) {
    out["error"] = s.unusable().message();
    return out;
  }
  const auto& sb = *s.super();
  out["layout"] = {
      {"checkpoint_slots",
       nlohmann::json::array({{{"slot", 0}, {"first_page", sb.ckpt_start(0)}, {"pages", sb.ckpt_pages}},
                              {{"slot", 1}, {"first_page", sb.ckpt_start(1)}, {"pages", sb.ckpt_pages}}})},
      {"journal", {{"first_page", sb.journal_start}, {"pages", sb.journal_pages}}},
      {"data",
       {{"first_page", sb.data_start},
        {"offset", sb.data_start * kPageSize},
        {"clusters", sb.num_clusters},
        {"cluster_size", sb.cluster_size}}},
  };
  const auto& ck = *s.checkpoint;
  nlohmann::json pages = nlohmann::json::array();
  for (const auto& p : ck.pages) pages.push_back(page_json(p, false));
  out["checkpoint"] = {{"slot", ck.slot},       {"seq", ck.seq},         {"first_page", ck.first_page},
                       {"offset", ck.first_page * kPageSize},            {"pages_expected", ck.pages_expected},
                       {"valid", ck.valid},     {"records", ck.records}, {"pages", pages}};
  out["other_slot"] = {{"slot", s.other_slot->slot}, {"first_page", page_json(s.other_slot->first, false)}};
  const auto& j = *s.journal;
  nlohmann::json jpages = nlohmann::json::array();
  for (const auto& p : j.pages) jpages.push_back(page_json(p, true));
  out["journal"] = {
      {"first_page", j.start_page},
      {"ring_pages", j.ring_pages},
      {"head_seq", j.head_seq},
      {"head_pos", j.head_pos},
      {"batches", batches_json(j.batches)},
      {"replay_pages", j.replay_pages},
      {"stop",
       {{"seq", j.stop_seq},
        {"position", j.stop_position},
        {"page", j.start_page + j.stop_position},
        {"kind", stop_kind_name(j.stop_kind)},
        {"reason", j.stop_reason}}},
      {"damage", j.damage},
      {"later_batches", batches_json(j.later_batches)},
      {"census",
       {{"stale", j.stale_pages}, {"blank", j.blank_pages}, {"rejected", j.bad_pages}, {"later_intact", j.later_intact_pages}}},
      {"pages", jpages},
  };
  if (!j.ring.empty()) {
    nlohmann::json ring = nlohmann::json::array();
    for (const auto& p : j.ring) ring.push_back(page_json(p, true));
    out["journal"]["ring"] = ring;
  }
  if (load) {
    out["load"] = {{"loaded", load->loaded}, {"error", load->loaded ? nlohmann::json(nullptr) : nlohmann::json(load->error)}};
    if (load->loaded) {
      out["load"]["blobs"] = load->blobs;
      out["load"]["next_id"] = load->next_id;
      out["load"]["super_blob"] = load->super_blob;
      out["load"]["total_clusters"] = load->total_clusters;
      out["load"]["free_clusters"] = load->free_clusters;
      out["load"]["dirty_clusters"] = load->dirty_clusters;
      out["load"]["journal_pages_replayed"] = load->journal_pages_replayed;
    }
  }
  return out;
}

}  // namespace sluice::blobtool
