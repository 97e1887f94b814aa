// The NBD codec: pure functions over bytes (protocol.h).
#include "target/nbd/protocol.h"

#include <endian.h>

#include <cstring>

namespace sluice::nbd::proto {

void put16(uint8_t* p, uint16_t v) {
  v = htobe16(v);
  std::memcpy(p, &v, 2);
}
void put32(uint8_t* p, uint32_t v) {
  v = htobe32(v);
  std::memcpy(p, &v, 4);
}
void put64(uint8_t* p, uint64_t v) {
  v = htobe64(v);
  std::memcpy(p, &v, 8);
}
uint16_t get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return be16toh(v);
}
uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return be32toh(v);
}
uint64_t get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return be64toh(v);
}

// ---- Transmission phase -------------------------------------------------------------------

std::optional<Request> parse_request(std::span<const uint8_t, kRequestSize> b) {
  if (get32(b.data()) != kRequestMagic) return std::nullopt;
  Request r;
  r.flags = get16(b.data() + 4);
  r.type = get16(b.data() + 6);
  r.cookie = get64(b.data() + 8);
  r.offset = get64(b.data() + 16);
  r.length = get32(b.data() + 24);
  return r;
}

namespace {

bool in_range(const Request& r, const ExportLimits& l) {
  return r.offset <= l.size_bytes && r.length <= l.size_bytes - r.offset;
}
bool aligned(const Request& r, const ExportLimits& l) {
  return l.block_size != 0 && r.offset % l.block_size == 0 && r.length % l.block_size == 0;
}

}  // namespace

uint32_t validate(const Request& r, const ExportLimits& l) {
  uint16_t allowed = kCmdFlagFua;
  if (r.type == kCmdWriteZeroes) allowed |= kCmdFlagNoHole | kCmdFlagFastZero;
  if (r.type == kCmdRead) allowed |= kCmdFlagDf;
  if (r.type == kCmdBlockStatus) allowed |= kCmdFlagReqOne;
  if ((r.flags & ~allowed) != 0) return kEinval;
  switch (r.type) {
    case kCmdBlockStatus:
      // Any byte range inside the export: the reply's extents start at `offset` exactly.
      if (!l.block_status || r.length == 0 || !in_range(r, l)) return kEinval;
      return 0;
    case kCmdRead:
    case kCmdWrite:
      if (r.type == kCmdWrite && l.read_only) return kEperm;
      if (r.length > l.max_payload) return kEoverflow;
      [[fallthrough]];
    case kCmdTrim:
    case kCmdWriteZeroes:
      if (r.type != kCmdRead && l.read_only) return kEperm;
      if ((r.type == kCmdTrim && !l.can_trim) || (r.type == kCmdWriteZeroes && !l.can_write_zeroes)) return kEnotsup;
      if (r.length == 0 || !aligned(r, l)) return kEinval;
      if (!in_range(r, l)) return r.type == kCmdRead || r.type == kCmdTrim ? kEinval : kEnospc;
      return 0;
    case kCmdFlush:
    case kCmdDisc: return 0;
    default: return kEinval;
  }
}

uint16_t transmission_flags(const ExportLimits& l) {
  uint16_t f = kTxHasFlags | kTxSendFlush | kTxSendFua | kTxCanMultiConn;
  if (l.read_only) return f | kTxReadOnly;
  if (l.can_trim) f |= kTxSendTrim;
  if (l.can_write_zeroes) f |= kTxSendWriteZeroes | kTxSendFastZero;
  return f;
}

size_t build_simple_reply(uint8_t* out, uint32_t error, uint64_t cookie) {
  put32(out, kSimpleReplyMagic);
  put32(out + 4, error);
  put64(out + 8, cookie);
  return kSimpleReplySize;
}

size_t build_structured_header(uint8_t* out, uint16_t flags, uint16_t type, uint64_t cookie, uint32_t length) {
  put32(out, kStructuredReplyMagic);
  put16(out + 4, flags);
  put16(out + 6, type);
  put64(out + 8, cookie);
  put32(out + 16, length);
  return kStructuredReplySize;
}

size_t build_read_chunk(uint8_t* out, uint64_t cookie, uint64_t offset, uint32_t data_len) {
  build_structured_header(out, kReplyFlagDone, kReplyTypeOffsetData, cookie, data_len + 8);
  put64(out + kStructuredReplySize, offset);
  return kStructuredReplySize + 8;
}

size_t build_error_chunk(uint8_t* out, uint64_t cookie, uint32_t error) {
  build_structured_header(out, kReplyFlagDone, kReplyTypeError, cookie, 6);
  put32(out + kStructuredReplySize, error);
  put16(out + kStructuredReplySize + 4, 0);  // no message
  return kStructuredReplySize + 6;
}

size_t build_block_status_payload(uint8_t* out, std::span<const Extent> extents) {
  put32(out, kBaseAllocationId);
  uint8_t* p = out + 4;
  for (const Extent& e : extents) {
    put32(p, e.length);
    put32(p + 4, e.flags);
    p += 8;
  }
  return static_cast<size_t>(p - out);
}

// ---- Handshake ----------------------------------------------------------------------------

std::vector<uint8_t> greeting() {
  std::vector<uint8_t> g(18);
  put64(g.data(), kNbdMagic);
  put64(g.data() + 8, kOptMagic);
  put16(g.data() + 16, kFlagFixedNewstyle | kFlagNoZeroes);
  return g;
}

void append_option_reply(std::vector<uint8_t>& out, uint32_t opt, uint32_t type, std::span<const uint8_t> data) {
  const size_t at = out.size();
  out.resize(at + 20 + data.size());
  put64(out.data() + at, kRepMagic);
  put32(out.data() + at + 8, opt);
  put32(out.data() + at + 12, type);
  put32(out.data() + at + 16, static_cast<uint32_t>(data.size()));
  if (!data.empty()) std::memcpy(out.data() + at + 20, data.data(), data.size());
}

void Handshake::close(std::string why) {
  state_ = State::closed;
  error_ = std::move(why);
}

size_t Handshake::feed(std::span<const uint8_t> in, std::vector<uint8_t>& out) {
  if (state_ == State::client_flags) {
    if (in.size() < 4) return 0;
    const uint32_t flags = get32(in.data());
    if ((flags & ~(kClientFixedNewstyle | kClientNoZeroes)) != 0) {
      close("unknown client flags");
      return 4;
    }
    no_zeroes_ = (flags & kClientNoZeroes) != 0;
    state_ = State::options;
    return 4;
  }
  if (state_ != State::options) return 0;
  if (in.size() < kOptionHeaderSize) return 0;
  if (get64(in.data()) != kOptMagic) {
    close("bad option magic");
    return kOptionHeaderSize;
  }
  const uint32_t opt = get32(in.data() + 8);
  const uint32_t len = get32(in.data() + 12);
  if (len > kMaxOptionLength) {
    close("option data too long");
    return kOptionHeaderSize;
  }
  if (in.size() - kOptionHeaderSize < len) return 0;
  option(opt, in.subspan(kOptionHeaderSize, len), out);
  return kOptionHeaderSize + len;
}

void Handshake::option(uint32_t opt, std::span<const uint8_t> data, std::vector<uint8_t>& out) {
  switch (opt) {
    case kOptExportName: {
      auto e = lookup_(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
      if (!e) {
        close("unknown export (EXPORT_NAME)");  // the protocol has no error reply here
        return;
      }
      chosen_ = std::move(*e);
      const size_t at = out.size();
      out.resize(at + 10 + (no_zeroes_ ? 0 : 124), 0);
      put64(out.data() + at, chosen_.limits.size_bytes);
      put16(out.data() + at + 8, transmission_flags(chosen_.limits));
      state_ = State::transmission;
      return;
    }
    case kOptAbort:
      append_option_reply(out, opt, kRepAck);
      close("");
      return;
    case kOptList: {
      if (!data.empty()) {
        append_option_reply(out, opt, kRepErrInvalid);
        return;
      }
      for (const std::string& name : names_()) {
        std::vector<uint8_t> d(4 + name.size());
        put32(d.data(), static_cast<uint32_t>(name.size()));
        std::memcpy(d.data() + 4, name.data(), name.size());
        append_option_reply(out, opt, kRepServer, d);
      }
      append_option_reply(out, opt, kRepAck);
      return;
    }
    case kOptStructuredReply:
      if (!data.empty()) {
        append_option_reply(out, opt, kRepErrInvalid);
        return;
      }
      structured_ = true;
      append_option_reply(out, opt, kRepAck);
      return;
    case kOptInfo:
    case kOptGo: info_or_go(opt, data, out); return;
    case kOptListMetaContext:
    case kOptSetMetaContext: meta_context(opt, data, out); return;
    default: append_option_reply(out, opt, kRepErrUnsup); return;
  }
}

void Handshake::info_or_go(uint32_t opt, std::span<const uint8_t> data, std::vector<uint8_t>& out) {
  // name length, name, request count, requests: the lengths must add up exactly.
  if (data.size() < 6) {
    append_option_reply(out, opt, kRepErrInvalid);
    return;
  }
  const uint32_t name_len = get32(data.data());
  if (name_len > data.size() - 6) {
    append_option_reply(out, opt, kRepErrInvalid);
    return;
  }
  const uint16_t nreq = get16(data.data() + 4 + name_len);
  if (data.size() != 6 + size_t{name_len} + 2 * size_t{nreq}) {
    append_option_reply(out, opt, kRepErrInvalid);
    return;
  }
  const std::string_view name(reinterpret_cast<const char*>(data.data() + 4), name_len);
  auto e = lookup_(name);
  if (!e) {
    append_option_reply(out, opt, kRepErrUnknown);
    return;
  }
  bool want_block_size = false, want_name = false;
  for (uint16_t i = 0; i < nreq; ++i) {
    const uint16_t what = get16(data.data() + 6 + name_len + 2 * i);
    want_block_size |= what == kInfoBlockSize;
    want_name |= what == kInfoName;
  }
  uint8_t info[14];
  put16(info, kInfoExport);
  put64(info + 2, e->limits.size_bytes);
  put16(info + 10, transmission_flags(e->limits));
  append_option_reply(out, opt, kRepInfo, std::span<const uint8_t>(info, 12));
  if (want_block_size) {
    put16(info, kInfoBlockSize);
    put32(info + 2, e->limits.block_size);
    put32(info + 6, std::max<uint32_t>(e->limits.block_size, 4096));
    put32(info + 10, e->limits.max_payload);
    append_option_reply(out, opt, kRepInfo, std::span<const uint8_t>(info, 14));
  }
  if (want_name) {
    std::vector<uint8_t> d(2 + e->name.size());
    put16(d.data(), kInfoName);
    std::memcpy(d.data() + 2, e->name.data(), e->name.size());
    append_option_reply(out, opt, kRepInfo, d);
  }
  append_option_reply(out, opt, kRepAck);
  if (opt == kOptGo) {
    chosen_ = std::move(*e);
    state_ = State::transmission;
  }
}

void Handshake::meta_context(uint32_t opt, std::span<const uint8_t> data, std::vector<uint8_t>& out) {
  const bool set = opt == kOptSetMetaContext;
  if (set) meta_allocation_ = false;  // a SET replaces the selection, even when it fails
  // name length, name, query count, queries (each a length and a string): the lengths must
  // add up exactly.
  auto invalid = [&] { append_option_reply(out, opt, kRepErrInvalid); };
  if (set && !structured_) return invalid();  // BLOCK_STATUS replies are structured
  if (data.size() < 8) return invalid();
  const uint32_t name_len = get32(data.data());
  if (name_len > data.size() - 8) return invalid();
  size_t at = 4 + size_t{name_len};
  const uint32_t nqueries = get32(data.data() + at);
  at += 4;
  bool wants_allocation = !set && nqueries == 0;  // LIST without queries: everything there is
  for (uint32_t i = 0; i < nqueries; ++i) {
    if (data.size() - at < 4) return invalid();
    const uint32_t len = get32(data.data() + at);
    at += 4;
    if (len > data.size() - at) return invalid();
    const std::string_view query(reinterpret_cast<const char*>(data.data() + at), len);
    at += len;
    // "base:" lists the namespace's contexts but selects none; other namespaces and leaf
    // names are not ours and are ignored.
    wants_allocation |= query == kBaseAllocation || (!set && query == "base:");
  }
  if (at != data.size()) return invalid();
  const std::string_view name(reinterpret_cast<const char*>(data.data() + 4), name_len);
  auto e = lookup_(name);
  if (!e) {
    append_option_reply(out, opt, kRepErrUnknown);
    return;
  }
  if (wants_allocation) {
    // A LIST reply's context id is reserved: zero.
    std::vector<uint8_t> d(4 + kBaseAllocation.size());
    put32(d.data(), set ? kBaseAllocationId : 0);
    std::memcpy(d.data() + 4, kBaseAllocation.data(), kBaseAllocation.size());
    append_option_reply(out, opt, kRepMetaContext, d);
  }
  if (set) {
    meta_allocation_ = wants_allocation;
    meta_export_ = e->name;
  }
  append_option_reply(out, opt, kRepAck);
}

}  // namespace sluice::nbd::proto
