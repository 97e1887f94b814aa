// The metadata walker (metadata_scan.h). Every verdict here is one load and recovery act
// on, so a rule changes in one place for both; the reasons are for people.
#include "blob/metadata_scan.h"

#include <algorithm>
#include <cstring>
#include <map>

#include <fmt/format.h>

#include "base/coding.h"
#include "blob/page_buffer.h"

namespace sluice::blob {
namespace {

char copy_letter(int copy) { return copy == 0 ? 'A' : 'B'; }

bool all_zero(const char* p) {
  for (uint32_t i = 0; i < kPageSize; ++i)
    if (p[i] != 0) return false;
  return true;
}

// Reads a region of pages through a bounded window, so that sizes taken from the disk (a
// checkpoint's page count, the journal's length) never size an allocation.
class Window {
 public:
  static constexpr uint64_t kPages = 256;  // 1 MiB
  Window(const PageReader& read, uint64_t start, uint64_t pages) : read_(read), start_(start), pages_(pages), buf_(kPages) {}

  // The page at `index` within the region.
  Result<const char*> page(uint64_t index) {
    if (index >= pages_) return Status(Errc::out_of_range, fmt::format("page {} is outside the region", index));
    if (index < first_ || index >= first_ + loaded_) {
      first_ = index;
      loaded_ = std::min(kPages, pages_ - index);
      Status st = read_(start_ + first_, buf_.p, loaded_);
      if (!st.ok()) {
        loaded_ = 0;
        return st;
      }
    }
    return static_cast<const char*>(buf_.p + (index - first_) * kPageSize);
  }

 private:
  const PageReader& read_;
  uint64_t start_, pages_;
  uint64_t first_ = 0, loaded_ = 0;
  PageBuffer buf_;
};

const char* kind_name(PageKind k) { return k == PageKind::checkpoint ? "checkpoint" : "journal"; }

// Decodes a checkpoint or journal page header raw and says why open_page() rejects it, if
// it does. open_page() stays the judge; the reason is for people.
PageReport judge_page(const char* p, PageKind kind, const Uuid& uuid) {
  PageReport r;
  const uint32_t magic = get_le<uint32_t>(p);
  r.has_magic = magic == static_cast<uint32_t>(kind);
  r.crc_stored = get_le<uint32_t>(p + 4);
  r.crc_computed = page_crc(p, 4);
  const PageHeader raw = read_page_header(p);
  r.uuid = raw.uuid;
  r.seq = raw.seq;
  r.aux = raw.aux;
  r.count = raw.count;
  r.payload_len = raw.payload_len;
  PageHeader h;
  r.valid = open_page(p, kind, uuid, &h);
  if (!r.has_magic) {
    const PageKind other = kind == PageKind::checkpoint ? PageKind::journal : PageKind::checkpoint;
    if (all_zero(p)) r.error = "never written (all zeroes)";
    else if (magic == static_cast<uint32_t>(other)) r.error = fmt::format("holds a {} page", kind_name(other));
    else if (has_super_magic(p)) r.error = "holds a super block";
    else r.error = fmt::format("no {} page magic (found {:#010x})", kind_name(kind), magic);
  } else if (r.crc_stored != r.crc_computed) {
    r.error = fmt::format("checksum mismatch (stored {:#010x}, computed {:#010x})", r.crc_stored, r.crc_computed);
  } else if (r.uuid != uuid) {
    r.error = fmt::format("belongs to another store ({})", uuid_string(r.uuid));
  } else if (r.payload_len > kPagePayload) {
    r.error = fmt::format("payload length {} exceeds {}", r.payload_len, kPagePayload);
  } else if (r.count == 0) {
    r.error = "page count 0";
  }
  if (r.valid != r.error.empty()) {  // the store's check and ours disagree: trust the store
    if (!r.valid) r.error = "rejected by the page check";
    else r.error.clear();
  }
  if (r.has_magic && r.crc_stored == r.crc_computed && r.payload_len <= kPagePayload) {
    Status st = decode_records({p + kPageHeaderSize, r.payload_len}, r.records);
    r.records_ok = st.ok();
    if (!st.ok()) {
      r.records_error = st.message();
      r.records.clear();
    }
  }
  return r;
}

void scan_super(MetadataScan& s, const char* pages) {
  for (int i = 0; i < 2; ++i) {
    const char* p = pages + i * kPageSize;
    SuperCopy& c = s.copies[i];
    c.copy = i;
    c.has_magic = has_super_magic(p);
    if (c.has_magic) {
      c.version = get_le<uint32_t>(p + 8);
      c.crc_stored = get_le<uint32_t>(p + 12);
      c.crc_computed = page_crc(p, 12);
      c.raw_flags = get_le<uint32_t>(p + 100);
      c.fields = read_super_fields(p);
    }
    auto decoded = decode_super(p, s.device_pages);
    c.valid = decoded.ok();
    if (c.valid) {
      c.fields = decoded.value();
    } else {
      c.verdict = decoded.status();
      c.error_code = decoded.status().code();
      c.error = decoded.status().message();
      if (c.error.starts_with("super block: ")) c.error = c.error.substr(13);
      if (!c.has_magic) c.error = all_zero(p) ? "no super block magic (all zeroes)" : "no super block magic";
    }
  }
  for (int i = 0; i < 2; ++i)
    if (s.copies[i].valid && (s.in_use < 0 || s.copies[i].fields.generation > s.copies[s.in_use].fields.generation))
      s.in_use = i;
  if (s.in_use >= 0) s.copies[s.in_use].in_use = true;
}

}  // namespace

Status scan_checkpoint(const PageReader& read, const Uuid& uuid, CheckpointReport& c) {
  // How many pages: the first page says (its header survives most damage to its payload);
  // failing that, the second one.
  PageBuffer first(2);
  const uint64_t peek = std::min<uint64_t>(2, c.slot_pages);
  SLUICE_RETURN_IF_ERROR(read(c.first_page, first.p, peek));
  uint64_t n = 1;
  PageReport p0 = judge_page(first.p, PageKind::checkpoint, uuid);
  if (p0.has_magic && p0.count >= 1 && p0.count <= c.slot_pages) {
    n = p0.count;
  } else if (peek > 1) {
    PageReport p1 = judge_page(first.p + kPageSize, PageKind::checkpoint, uuid);
    if (p1.valid && p1.seq == c.seq && p1.count >= 1 && p1.count <= c.slot_pages) n = p1.count;
  }
  c.pages_expected = n;
  Window slot(read, c.first_page, n);
  c.valid = true;
  for (uint64_t i = 0; i < n; ++i) {
    auto page = slot.page(i);
    if (!page.ok()) return page.status();
    PageReport r = judge_page(*page, PageKind::checkpoint, uuid);
    r.page = c.first_page + i;
    r.position = i;
    if (r.valid) {
      if (r.seq != c.seq) {
        r.valid = false;
        r.error = fmt::format("sequence {}, but the super block names checkpoint {}{}", r.seq, c.seq,
                              r.seq < c.seq ? " (a page of an older checkpoint)" : "");
      } else if (r.aux != i) {
        r.valid = false;
        r.error = fmt::format("says it is page {} of the checkpoint, found at page {}", r.aux, i);
      } else if (r.count != n) {
        r.valid = false;
        r.error = fmt::format("says the checkpoint has {} pages, the first page says {}", r.count, n);
      }
    }
    if (r.valid && !r.records_ok) r.error = "records: " + r.records_error;
    c.valid = c.valid && r.valid && r.records_ok;
    c.records += r.records.size();
    c.pages.push_back(std::move(r));
  }
  return Status::Ok();
}

namespace {

Status scan_checkpoints(MetadataScan& s, const PageReader& read) {
  const SuperBlock& sb = *s.super();
  CheckpointReport c;
  c.slot = sb.active_ckpt;
  c.seq = sb.ckpt_seq;
  c.first_page = sb.ckpt_start(c.slot);
  c.slot_pages = sb.ckpt_pages;
  SLUICE_RETURN_IF_ERROR(scan_checkpoint(read, sb.uuid, c));
  s.checkpoint = std::move(c);

  OtherSlotReport o;
  o.slot = 1 - sb.active_ckpt;
  o.first_page = sb.ckpt_start(o.slot);
  PageBuffer first(1);
  SLUICE_RETURN_IF_ERROR(read(o.first_page, first.p, 1));
  o.first = judge_page(first.p, PageKind::checkpoint, sb.uuid);
  o.first.page = o.first_page;
  o.first.records.clear();  // only the header matters here
  s.other_slot = std::move(o);
  return Status::Ok();
}

Status scan_journal(MetadataScan& s, const PageReader& read, const ScanOptions& opts) {
  const SuperBlock& sb = *s.super();
  JournalReport j;
  j.start_page = sb.journal_start;
  j.ring_pages = sb.journal_pages;
  j.head_seq = sb.journal_head_seq;
  j.head_pos = sb.journal_head_pos;
  const uint64_t jp = j.ring_pages;
  Window ring(read, j.start_page, jp);
  Status io;  // the first read error; the walk stops there
  auto judge_pos = [&](uint64_t pos) {
    PageReport r;
    auto page = ring.page(pos);
    if (page.ok()) {
      r = judge_page(*page, PageKind::journal, sb.uuid);
    } else {
      if (io.ok()) io = page.status();
      r.error = "unreadable: " + page.status().message();
    }
    r.page = j.start_page + pos;
    r.position = pos;
    return r;
  };
  auto pos_of = [&](uint64_t seq) { return (j.head_pos + (seq - j.head_seq)) % jp; };
  auto judge_at = [&](uint64_t seq) { return judge_pos(pos_of(seq)); };
  auto stop = [&](uint64_t seq, StopKind kind, std::string why) {
    j.stop_seq = seq;
    j.stop_position = pos_of(seq);
    j.stop_kind = kind;
    j.stop_reason = std::move(why);
  };

  // The walk recovery does (recovery.cc), remembering why it ends.
  uint64_t seq = j.head_seq;
  for (;;) {
    if (seq - j.head_seq >= jp) {
      stop(seq, StopKind::end, "the journal fills the whole ring");
      break;
    }
    PageReport r = judge_at(seq);
    if (!r.valid) {
      const bool torn = r.has_magic && r.crc_stored != r.crc_computed;
      std::string why = torn ? r.error : fmt::format("end of the journal: the next page is {}", r.error);
      j.pages.push_back(std::move(r));
      stop(seq, torn ? StopKind::torn : StopKind::end, std::move(why));
      break;
    }
    if (r.seq != seq) {
      const uint64_t found = r.seq;
      j.pages.push_back(std::move(r));
      if (found < seq) stop(seq, StopKind::end, fmt::format("end of the journal: the next page holds seq {} from an earlier lap", found));
      else stop(seq, StopKind::damaged, fmt::format("out of sequence: seq {} where {} was expected", found, seq));
      break;
    }
    if (r.aux != seq) {
      const uint64_t aux = r.aux;
      j.pages.push_back(std::move(r));
      stop(seq, StopKind::damaged, fmt::format("seq {} claims to be part of the batch at seq {}, which ended before it", seq, aux));
      break;
    }
    const uint64_t count = r.count;
    if (seq - j.head_seq + count > jp) {
      j.pages.push_back(std::move(r));
      stop(seq, StopKind::damaged, fmt::format("the batch at seq {} claims {} pages, more than the ring has left", seq, count));
      break;
    }
    JournalBatch batch{seq, static_cast<uint32_t>(count), 0};
    std::vector<PageReport> pages;
    std::string broken;
    StopKind broken_kind = StopKind::torn;
    for (uint64_t i = 0; i < count && broken.empty(); ++i) {
      PageReport p = i == 0 ? std::move(r) : judge_at(seq + i);
      if (!p.valid) {
        broken = p.error;
      } else if (p.seq != seq + i || p.aux != seq || p.count != count) {
        broken = fmt::format("holds seq {} of a {}-page batch at seq {}", p.seq, p.count, p.aux);
        p.valid = false;
        p.error = broken;
      } else if (!p.records_ok) {
        broken = "records: " + p.records_error;  // a page that passes its checksum but does not parse
        broken_kind = StopKind::damaged;
        p.error = broken;
      }
      batch.records += p.records.size();
      pages.push_back(std::move(p));
      if (!broken.empty())
        broken = fmt::format("the batch at seq {} ({} pages) is incomplete: page {} of it (seq {}): {}", seq, count,
                             i + 1, seq + i, broken);
    }
    for (auto& p : pages) j.pages.push_back(std::move(p));
    if (!broken.empty()) {
      stop(seq, broken_kind, std::move(broken));
      break;
    }
    j.batches.push_back(batch);
    j.replay_pages += count;
    seq += count;
  }

  // The rest of the ring. A whole page of a batch that starts after the stop point was
  // written after everything before it was flushed (batches are written one at a time,
  // each followed by a FLUSH), so the stop cannot be a crash's torn tail.
  // Valid pages at or past the stop point are not replayed (a torn batch's pages, or whole
  // batches behind a damaged page). Left in the ring, one of them could later sit exactly
  // where the journal head's sequence is expected and be replayed onto a state it was never
  // part of; so recovery resumes the journal past every sequence the ring holds.
  std::map<uint64_t, JournalBatch> later;
  j.resume_seq = j.stop_seq;
  for (uint64_t pos = 0; opts.census && pos < jp && io.ok(); ++pos) {
    PageReport r = judge_pos(pos);
    const bool replayed = r.valid && r.seq >= j.head_seq && r.seq < j.stop_seq;
    if (r.valid && r.seq >= j.stop_seq) ++j.valid_ahead;
    if (r.valid && r.seq >= j.resume_seq && r.seq != UINT64_MAX) j.resume_seq = r.seq + 1;
    if (r.valid && r.aux > j.stop_seq && r.seq >= r.aux) {
      ++j.later_intact_pages;
      auto& b = later[r.aux];
      b.seq = r.aux;
      b.pages++;
      b.records += r.records.size();
    } else if (replayed || (r.valid && r.aux == j.stop_seq)) {
      // replayed, or part of the batch where replay stopped: reported above
    } else if (r.valid || (r.has_magic && r.crc_stored == r.crc_computed)) {
      ++j.stale_pages;  // an earlier lap, or another store's
    } else if (r.has_magic) {
      ++j.bad_pages;
    } else {
      ++j.blank_pages;
    }
    if (opts.whole_ring) j.ring.push_back(std::move(r));
  }
  for (auto& [aux, b] : later) j.later_batches.push_back(b);
  if (j.stop_kind == StopKind::damaged) j.damage.push_back(fmt::format("replay stops at seq {}: {}", j.stop_seq, j.stop_reason));
  if (j.later_intact_pages > 0) {
    j.damage.push_back(fmt::format(
        "{} intact page(s) of {} batch(es) at seq {}..{} follow the point where replay stops (seq {}): they were "
        "acknowledged, and replay would drop them",
        j.later_intact_pages, j.later_batches.size(), j.later_batches.front().seq, j.later_batches.back().seq,
        j.stop_seq));
    j.stop_kind = StopKind::damaged;
  }
  if (!io.ok()) return io;
  s.journal = std::move(j);
  return Status::Ok();
}

}  // namespace

Status MetadataScan::unusable() const {
  if (in_use >= 0) return Status::Ok();
  for (Errc want : {Errc::not_supported, Errc::corrupt})
    for (const auto& c : copies)
      if (c.error_code == want)
        return Status(want, fmt::format("{}: super block copy {}: {}", spec, copy_letter(c.copy), c.error));
  return Status(Errc::not_found, fmt::format("{}: not a Sluice blobstore (no super block magic in page 0 or 1)", spec));
}

Result<MetadataScan> scan_metadata(const bdev::Geometry& g, const PageReader& read, const ScanOptions& opts) {
  MetadataScan s;
  s.geometry = g;
  s.device_pages = g.size_bytes() / kPageSize;
  if (s.device_pages < 2)
    return Status(Errc::not_found, fmt::format("the device ({} bytes) is too small to hold a blobstore", g.size_bytes()));
  PageBuffer supers(2);
  SLUICE_RETURN_IF_ERROR(read(0, supers.p, 2));
  scan_super(s, supers.p);
  if (s.in_use < 0) return s;
  SLUICE_RETURN_IF_ERROR(scan_checkpoints(s, read));
  SLUICE_RETURN_IF_ERROR(scan_journal(s, read, opts));
  return s;
}

Result<MetadataScan> scan_metadata(std::string_view bdev_name, const ScanOptions& opts) {
  bdev::OpenOptions o;
  o.write = false;
  o.claim = bdev::Claim::shared;
  auto desc = bdev::open(bdev_name, o);
  if (!desc.ok()) return desc.status();
  const bdev::Geometry g = (*desc)->geometry();
  if (g.block_size == 0 || g.block_size > kPageSize || kPageSize % g.block_size != 0)
    return Status(Errc::not_supported, fmt::format("{} has {}-byte blocks; a blobstore needs blocks that divide 4096",
                                                   bdev_name, g.block_size));
  auto ch = (*desc)->get_channel();
  if (!ch.ok()) return ch.status();
  const uint64_t bpp = kPageSize / g.block_size;
  auto read = [&](uint64_t page, char* buf, uint64_t pages) {
    if ((page + pages) * bpp > g.num_blocks)
      return Status(Errc::out_of_range, fmt::format("{}: pages {}..{} are beyond the device ({} pages)", bdev_name,
                                                    page, page + pages - 1, g.num_blocks / bpp));
    return bdev::SyncIo{**desc, *ch}.read(buf, page * bpp, pages * bpp);
  };
  auto s = scan_metadata(g, read, opts);
  (void)(*desc)->put_channel(*ch);
  if (!s.ok()) {
    const Status& st = s.status();
    if (st.code() == Errc::not_found) return Status(st.code(), fmt::format("{}: {}", bdev_name, st.message()));
    return st;
  }
  s->spec = std::string(bdev_name);
  return s;
}

}  // namespace sluice::blob
