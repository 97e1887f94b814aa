#include "blob/records.h"

#include <fmt/format.h>

#include "base/coding.h"

namespace sluice::blob {

Record Record::make_create(uint64_t id, uint32_t flags, uint64_t parent, uint64_t size) {
  Record r;
  r.type = RecordType::create;
  r.id = id;
  r.flags = flags;
  r.parent = parent;
  r.value = size;
  return r;
}
Record Record::make_remove(uint64_t id) {
  Record r;
  r.type = RecordType::remove;
  r.id = id;
  return r;
}
Record Record::make_resize(uint64_t id, uint64_t size) {
  Record r;
  r.type = RecordType::resize;
  r.id = id;
  r.value = size;
  return r;
}
Record Record::make_extent(uint64_t id, uint64_t first, uint32_t count, uint32_t cluster_plus1) {
  Record r;
  r.type = RecordType::extent;
  r.id = id;
  r.value = first;
  r.count = count;
  r.cluster = cluster_plus1;
  return r;
}
Record Record::make_xattr_set(uint64_t id, bool internal, std::string_view name, std::string_view value) {
  Record r;
  r.type = RecordType::xattr_set;
  r.id = id;
  r.internal = internal;
  r.name = name;
  r.data = value;
  return r;
}
Record Record::make_xattr_remove(uint64_t id, bool internal, std::string_view name) {
  Record r;
  r.type = RecordType::xattr_remove;
  r.id = id;
  r.internal = internal;
  r.name = name;
  return r;
}
Record Record::make_set_parent(uint64_t id, uint64_t parent) {
  Record r;
  r.type = RecordType::set_parent;
  r.id = id;
  r.parent = parent;
  return r;
}
Record Record::make_set_flags(uint64_t id, uint32_t flags) {
  Record r;
  r.type = RecordType::set_flags;
  r.id = id;
  r.flags = flags;
  return r;
}
Record Record::make_next_id(uint64_t next) {
  Record r;
  r.type = RecordType::next_id;
  r.id = next;
  return r;
}
Record Record::make_super_blob(uint64_t id) {
  Record r;
  r.type = RecordType::super_blob;
  r.id = id;
  return r;
}
Record Record::make_clusters(RecordType t, std::vector<uint32_t> clusters) {
  Record r;
  r.type = t;
  r.clusters = std::move(clusters);
  return r;
}

namespace {

void encode_body(const Record& r, Encoder& e) {
  switch (r.type) {
    case RecordType::create:
      e.put<uint64_t>(r.id);
      e.put<uint32_t>(r.flags);
      e.put<uint64_t>(r.parent);
      e.put<uint64_t>(r.value);
      break;
    case RecordType::remove:
    case RecordType::next_id:
    case RecordType::super_blob:
      e.put<uint64_t>(r.id);
      break;
    case RecordType::resize:
      e.put<uint64_t>(r.id);
      e.put<uint64_t>(r.value);
      break;
    case RecordType::extent:
      e.put<uint64_t>(r.id);
      e.put<uint64_t>(r.value);
      e.put<uint32_t>(r.count);
      e.put<uint32_t>(r.cluster);
      break;
    case RecordType::xattr_set:
      e.put<uint64_t>(r.id);
      e.put<uint8_t>(r.internal ? 1 : 0);
      e.put<uint8_t>(static_cast<uint8_t>(r.name.size()));
      e.put<uint16_t>(static_cast<uint16_t>(r.data.size()));
      e.bytes(r.name);
      e.bytes(r.data);
      break;
    case RecordType::xattr_remove:
      e.put<uint64_t>(r.id);
      e.put<uint8_t>(r.internal ? 1 : 0);
      e.put<uint8_t>(static_cast<uint8_t>(r.name.size()));
      e.bytes(r.name);
      break;
    case RecordType::set_parent:
      e.put<uint64_t>(r.id);
      e.put<uint64_t>(r.parent);
      break;
    case RecordType::set_flags:
      e.put<uint64_t>(r.id);
      e.put<uint32_t>(r.flags);
      break;
    case RecordType::dirty:
    case RecordType::clean:
      e.put<uint32_t>(static_cast<uint32_t>(r.clusters.size()));
      for (uint32_t c : r.clusters) e.put<uint32_t>(c);
      break;
  }
}

}  // namespace

void encode_record(const Record& r, std::string& out) {
  std::string body;
  Encoder eb(body);
  encode_body(r, eb);
  Encoder e(out);
  e.put<uint16_t>(static_cast<uint16_t>(r.type));
  e.put<uint16_t>(static_cast<uint16_t>(body.size()));
  e.bytes(body);
}

size_t encoded_size(const Record& r) {
  std::string s;
  encode_record(r, s);
  return s.size();
}

std::vector<std::string> pack_records(const std::vector<Record>& records, size_t payload_max) {
  std::vector<std::string> pages;
  std::string rec;
  for (const Record& r : records) {
    rec.clear();
    encode_record(r, rec);
    if (pages.empty() || pages.back().size() + rec.size() > payload_max) pages.emplace_back();
    pages.back() += rec;
  }
  return pages;
}

Status decode_records(std::string_view payload, std::vector<Record>& out) {
  Decoder d(payload);
  while (d.remaining() > 0) {
    auto type = static_cast<RecordType>(d.get<uint16_t>());
    uint16_t len = d.get<uint16_t>();
    std::string_view body_bytes = d.bytes(len);
    if (d.failed()) return Status(Errc::corrupt, "metadata record truncated");
    Decoder b(body_bytes);
    Record r;
    r.type = type;
    switch (type) {
      case RecordType::create:
        r.id = b.get<uint64_t>();
        r.flags = b.get<uint32_t>();
        r.parent = b.get<uint64_t>();
        r.value = b.get<uint64_t>();
        break;
      case RecordType::remove:
      case RecordType::next_id:
      case RecordType::super_blob:
        r.id = b.get<uint64_t>();
        break;
      case RecordType::resize:
        r.id = b.get<uint64_t>();
        r.value = b.get<uint64_t>();
        break;
      case RecordType::extent:
        r.id = b.get<uint64_t>();
        r.value = b.get<uint64_t>();
        r.count = b.get<uint32_t>();
        r.cluster = b.get<uint32_t>();
        break;
      case RecordType::xattr_set: {
        r.id = b.get<uint64_t>();
        r.internal = b.get<uint8_t>() != 0;
        uint8_t nlen = b.get<uint8_t>();
        uint16_t vlen = b.get<uint16_t>();
        r.name = b.bytes(nlen);
        r.data = b.bytes(vlen);
        break;
      }
      case RecordType::xattr_remove: {
        r.id = b.get<uint64_t>();
        r.internal = b.get<uint8_t>() != 0;
        uint8_t nlen = b.get<uint8_t>();
        r.name = b.bytes(nlen);
        break;
      }
      case RecordType::set_parent:
        r.id = b.get<uint64_t>();
        r.parent = b.get<uint64_t>();
        break;
      case RecordType::set_flags:
        r.id = b.get<uint64_t>();
        r.flags = b.get<uint32_t>();
        break;
      case RecordType::dirty:
      case RecordType::clean: {
        uint32_t n = b.get<uint32_t>();
        if (n > kMaxClustersPerRecord) return Status(Errc::corrupt, fmt::format("cluster list of {} entries", n));
        r.clusters.resize(n);
        for (auto& c : r.clusters) c = b.get<uint32_t>();
        break;
      }
      default:
        return Status(Errc::corrupt, fmt::format("unknown metadata record type {}", static_cast<unsigned>(type)));
    }
    if (b.failed() || b.remaining() != 0)
      return Status(Errc::corrupt, fmt::format("metadata record of type {} has a bad length", static_cast<unsigned>(type)));
    out.push_back(std::move(r));
  }
  return Status::Ok();
}

}  // namespace sluice::blob
