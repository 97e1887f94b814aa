#include "blob_image.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/coding.h"
#include "base/crc32c.h"
#include "bdev/bdev.h"
#include "blob/blob.h"

namespace sluice::fuzz {
namespace {

using blob::kPageHeaderSize;
using blob::kPagePayload;
using blob::kPageSize;

[[noreturn]] void die(const char* what, const Status& st) {
  std::fprintf(stderr, "blob fuzz harness: %s: %s\n", what, st.to_string().c_str());
  std::abort();
}
void must(const char* what, const Status& st) {
  if (!st.ok()) die(what, st);
}
template <typename T>
T must(const char* what, Result<T> r) {
  if (!r.ok()) die(what, r.status());
  return std::move(r.value());
}

void touch(blob::Blobstore& bs, blob::BlobId id, uint64_t cluster) {
  auto b = must("open", bs.open(id));
  must("first write", first_write(bs, *b, cluster));
  must("close", bs.close(std::move(b)));
}

}  // namespace

Status first_write(blob::Blobstore& bs, blob::Blob& b, uint64_t cluster) {
  auto ch = bs.get_channel();
  if (!ch.ok()) return ch.status();
  const auto si = bs.store_info();
  std::unique_ptr<char, void (*)(void*)> unit(static_cast<char*>(std::aligned_alloc(kPageSize, kPageSize)), free);
  std::memset(unit.get(), 0, kPageSize);
  struct Done {
    bool done = false;
    Errc status = Errc::ok;
  } d;
  auto complete = [](void* arg, Errc e) {
    auto* done = static_cast<Done*>(arg);
    done->status = e;
    done->done = true;
  };
  Status st = bs.write(*ch, b, unit.get(), cluster * (si.cluster_size / si.io_unit), 1, complete, &d);
  while (st.ok() && !d.done) bs.poll(*ch);
  if (st.ok() && d.status != Errc::ok) st = Status(d.status, "the first write failed");
  (void)bs.put_channel(*ch);
  return st;
}

namespace {

BaseImage build() {
  BaseImage img;
  img.dev = must("create malloc bdev", bdev::create("malloc:4M?qd=4", "fuzz_blob0"));
  blob::InitOptions io;
  io.cluster_size = 64 * 1024;
  io.checkpoint_bytes = 8 * 1024;   // 4 pages per slot (the minimum)
  io.journal_bytes = 64 * 1024;     // 16 pages
  {
    // Phase 1: build a varied state, then unload (checkpoint into the second slot).
    auto bs = must("init", blob::Blobstore::init(img.dev, io));
    blob::CreateOptions thick;
    thick.size_clusters = 3;
    thick.xattrs = {{"name", "alpha"}, {"owner", "fuzz"}};
    const auto a = must("create a", bs->create(thick));
    blob::CreateOptions thin;
    thin.thin = true;
    thin.size_clusters = 40;
    thin.xattrs = {{"name", "beta"}};
    const auto b = must("create b", bs->create(thin));
    for (uint64_t c : {0, 5, 6}) touch(*bs, b, c);
    must("internal xattr", bs->set_xattr(a, "lvs", "internal-blob", true));
    must("super blob", bs->set_super_blob(a));
    const auto s = must("snapshot", bs->snapshot(b, {{"snap", "1"}}));
    const auto c = must("clone", bs->clone(s, {{"name", "gamma"}}));
    touch(*bs, c, 5);  // copy on write from the snapshot
    touch(*bs, b, 7);
    blob::CreateOptions doomed;
    doomed.size_clusters = 2;
    const auto d = must("create d", bs->create(doomed));
    must("sync", bs->sync_md());
    must("remove d", bs->remove(d));  // freed: dirty, zeroed, then clean
    must("sync", bs->sync_md());
    must("unload", bs->unload());
  }
  {
    // Phase 2: load, a few synced batches, then changes that are never synced.
    auto bs = must("load", blob::Blobstore::load(img.dev));
    const auto ids = bs->list();
    if (ids.size() < 4) die("load", Status(Errc::corrupt, "expected 4 blobs"));
    must("resize", bs->resize(ids[0], 5));
    must("xattr", bs->set_xattr(ids[1], "k", "v"));
    must("sync", bs->sync_md());
    blob::CreateOptions thin;
    thin.thin = true;
    thin.size_clusters = 8;
    const auto e = must("create e", bs->create(thin));
    must("xattr", bs->set_xattr(e, "name", "epsilon"));
    must("read only", bs->set_read_only(e));
    must("sync", bs->sync_md());
    must("shrink", bs->resize(ids[0], 2));
    must("remove xattr", bs->remove_xattr(ids[0], "owner"));
    must("sync", bs->sync_md());
    // Never synced: gone after the power cut.
    must("xattr", bs->set_xattr(ids[3], "unsynced", "x"));
    must("remove", bs->remove(e));
    bs->abandon();
  }

  // The raw metadata bytes, read through the bdev API.
  auto desc = must("open bdev", bdev::open(img.dev));
  img.block_size = desc->geometry().block_size;
  const uint32_t bpp = kPageSize / img.block_size;
  auto ch = must("channel", desc->get_channel());
  bdev::SyncIo sio{*desc, ch};
  char* two = static_cast<char*>(std::aligned_alloc(kPageSize, 2 * kPageSize));
  must("read super", sio.read(two, 0, 2 * bpp));
  const uint64_t device_pages = desc->geometry().size_bytes() / kPageSize;
  auto s0 = blob::decode_super(two, device_pages), s1 = blob::decode_super(two + kPageSize, device_pages);
  std::free(two);
  if (!s0.ok() && !s1.ok()) die("decode super", s0.status());
  img.super_copy = !s1.ok() || (s0.ok() && s0->generation > s1->generation) ? 0 : 1;
  img.sb = img.super_copy == 0 ? s0.value() : s1.value();
  img.meta_pages = img.sb.data_start;
  img.bytes.reset(static_cast<char*>(std::aligned_alloc(kPageSize, img.meta_pages * kPageSize)), std::free);
  must("read metadata", sio.read(img.bytes.get(), 0, img.meta_pages * bpp));
  must("put channel", desc->put_channel(ch));
  desc.reset();

  // Where the journal's valid batches end (the same walk as recovery, without decoding).
  const uint64_t jp = img.sb.journal_pages;
  uint64_t seq = img.sb.journal_head_seq;
  auto page_at = [&](uint64_t sq) {
    return img.bytes.get() + (img.sb.journal_start + (img.sb.journal_head_pos + (sq - img.sb.journal_head_seq)) % jp) * kPageSize;
  };
  blob::PageHeader h;
  while (seq - img.sb.journal_head_seq < jp && blob::open_page(page_at(seq), blob::PageKind::journal, img.sb.uuid, &h) &&
         h.seq == seq && h.aux == seq && seq - img.sb.journal_head_seq + h.count <= jp) {
    seq += h.count;
    ++img.journal_batches;
  }
  img.journal_next_seq = seq;
  img.journal_next_pos = (img.sb.journal_head_pos + (seq - img.sb.journal_head_seq)) % jp;
  return img;
}

}  // namespace

const BaseImage& base_image() {
  static const BaseImage img = build();
  return img;
}

uint64_t select_page(const BaseImage& img, uint8_t sel) {
  const uint64_t index = sel >> 2;
  switch (sel & 3) {
    case 0: return index % 2;
    case 1: return img.sb.ckpt_start(img.sb.active_ckpt) + index % img.sb.ckpt_pages;
    case 2: return img.sb.ckpt_start(1 - img.sb.active_ckpt) + index % img.sb.ckpt_pages;
    default: return img.sb.journal_start + (img.sb.journal_head_pos + index) % img.sb.journal_pages;
  }
}

void reseal(uint64_t page, char* p) {
  // format.cc's page_crc: CRC-32C of the page with its CRC field read as zero.
  const size_t at = page < 2 ? 12 : 4;
  std::memset(p + at, 0, 4);
  put_le<uint32_t>(p + at, crc32c(p, kPageSize));
}

uint8_t corrupt_image(const BaseImage& img, const uint8_t* data, size_t size, char* image) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const uint64_t meta_bytes = img.meta_pages * kPageSize;
  const uint8_t* in = data + 1;
  const uint8_t* end = data + size;
  auto take = [&](size_t n) { return static_cast<size_t>(end - in) >= n; };

  switch (mode & 3) {
    case kKindPatch: {
      std::vector<uint64_t> touched;
      while (take(5)) {
        const uint64_t off = get_le<uint32_t>(reinterpret_cast<const char*>(in)) % meta_bytes;
        size_t len = in[4];
        in += 5;
        len = std::min<size_t>({len, static_cast<size_t>(end - in), meta_bytes - off});
        std::memcpy(image + off, in, len);
        in += len;
        for (uint64_t pg = off / kPageSize; pg <= (off + std::max<size_t>(len, 1) - 1) / kPageSize; ++pg)
          touched.push_back(pg);
      }
      if (mode & kBitReseal) {
        std::sort(touched.begin(), touched.end());
        touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
        for (uint64_t pg : touched) reseal(pg, image + pg * kPageSize);
      }
      break;
    }
    case kKindPayload: {
      if (!take(1)) break;
      const uint64_t pg = select_page(img, *in++);
      char* p = image + pg * kPageSize;
      uint32_t plen = get_le<uint32_t>(p + 44);
      uint32_t hi = 0;
      while (take(3)) {
        const uint32_t off = get_le<uint16_t>(reinterpret_cast<const char*>(in)) % kPagePayload;
        size_t len = in[2];
        in += 3;
        len = std::min<size_t>({len, static_cast<size_t>(end - in), kPagePayload - off});
        std::memcpy(p + kPageHeaderSize + off, in, len);
        in += len;
        hi = std::max<uint32_t>(hi, off + static_cast<uint32_t>(len));
      }
      if ((mode & kBitGrowPayload) && hi > plen && pg >= 2) put_le<uint32_t>(p + 44, hi);
      reseal(pg, p);
      break;
    }
    case kKindReplace: {
      if (!take(1)) break;
      const uint64_t pg = select_page(img, *in++);
      char* p = image + pg * kPageSize;
      std::memcpy(p, in, std::min<size_t>(end - in, kPageSize));
      if (mode & kBitReseal) reseal(pg, p);
      break;
    }
    case kKindAppend: {
      std::vector<std::string> payloads;
      const uint64_t room = img.sb.journal_pages - (img.journal_next_seq - img.sb.journal_head_seq);
      while (take(2) && payloads.size() < room) {
        size_t len = get_le<uint16_t>(reinterpret_cast<const char*>(in));
        in += 2;
        len = std::min<size_t>({len, static_cast<size_t>(end - in), kPagePayload});
        payloads.emplace_back(reinterpret_cast<const char*>(in), len);
        in += len;
      }
      for (size_t i = 0; i < payloads.size(); ++i) {
        const uint64_t pos = (img.journal_next_pos + i) % img.sb.journal_pages;
        char* p = image + (img.sb.journal_start + pos) * kPageSize;
        std::memcpy(p + kPageHeaderSize, payloads[i].data(), payloads[i].size());
        blob::PageHeader h;
        h.kind = blob::PageKind::journal;
        h.uuid = img.sb.uuid;
        h.seq = img.journal_next_seq + i;
        h.aux = img.journal_next_seq;
        h.count = static_cast<uint32_t>(payloads.size());
        h.payload_len = static_cast<uint32_t>(payloads[i].size());
        blob::seal_page(h, p);
      }
      break;
    }
  }
  return mode;
}

}  // namespace sluice::fuzz
