// Fuzz target: the NBD codec (src/target/nbd/protocol.h), as a server connection meets it.
//
// Input: byte 0 picks how the stream arrives (1-16 bytes at a time, as a socket may split
// it); the rest is the client's byte stream, fed to the handshake state machine and, once
// it reaches transmission, parsed as requests (a WRITE's payload skipped). Besides "never
// crash, leak or hang" it checks:
//   - feed() consumes only what it is given, and every option reply it writes is whole
//     (the output tiles into reply headers and their stated lengths);
//   - a request that validate() accepts lies inside the export, is block aligned, and a
//     READ or WRITE fits the payload cap; a read-only export accepts no write; BLOCK_STATUS
//     is accepted only after SET_META_CONTEXT selected base:allocation for that export.
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "target/nbd/protocol.h"

namespace sluice::fuzz {
namespace {

using namespace sluice::nbd::proto;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "nbd_protocol_fuzz: BROKEN PROMISE: %s\n", what);
  std::abort();
}

constexpr ExportLimits kLimits{1 << 20, 512, 65536, false};
constexpr ExportLimits kReadOnly{1 << 20, 4096, 65536, true};

std::optional<ExportView> lookup(std::string_view name) {
  if (name.empty() || name == "disk") return ExportView{"disk", kLimits};
  if (name == "ro") return ExportView{"ro", kReadOnly};
  return std::nullopt;
}

// Option replies tile the output; `from` is where this feed's output began.
void check_replies(const std::vector<uint8_t>& out, size_t from, bool export_name_answer) {
  size_t at = from;
  while (at < out.size()) {
    if (out.size() - at < 20 || get64(out.data() + at) != kRepMagic) {
      // EXPORT_NAME is answered without a reply header: size, flags, maybe 124 zeroes.
      if (export_name_answer && (out.size() - at == 10 || out.size() - at == 134)) return;
      broken("option reply header malformed");
    }
    const uint32_t len = get32(out.data() + at + 16);
    if (out.size() - at - 20 < len) broken("option reply shorter than its length");
    at += 20 + len;
  }
}

void check_request(const Request& r, const ExportLimits& l) {
  const uint32_t err = validate(r, l);
  if (err != 0) return;
  switch (r.type) {
    case kCmdRead:
    case kCmdWrite:
      if (r.length > l.max_payload) broken("accepted a payload over the cap");
      [[fallthrough]];
    case kCmdTrim:
    case kCmdWriteZeroes:
      if (r.offset > l.size_bytes || r.length > l.size_bytes - r.offset) broken("accepted a request past the end");
      if (r.offset % l.block_size != 0 || r.length % l.block_size != 0) broken("accepted an unaligned request");
      if (r.length == 0) broken("accepted an empty request");
      if (l.read_only && r.type != kCmdRead) broken("accepted a write on a read-only export");
      break;
    case kCmdBlockStatus:
      if (!l.block_status) broken("accepted BLOCK_STATUS without base:allocation selected");
      if (r.offset > l.size_bytes || r.length > l.size_bytes - r.offset) broken("accepted a status past the end");
      if (r.length == 0) broken("accepted an empty status request");
      break;
    case kCmdFlush:
    case kCmdDisc: break;
    default: broken("accepted an unknown command");
  }
  uint8_t reply[kStructuredReplySize + 8];
  if (build_simple_reply(reply, err, r.cookie) != kSimpleReplySize) broken("simple reply size");
  if (build_read_chunk(reply, r.cookie, r.offset, r.length) != kStructuredReplySize + 8) broken("read chunk size");
}

void run(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const size_t step = 1 + data[0] % 16;
  Handshake hs(lookup, [] { return std::vector<std::string>{"disk", "ro"}; });
  std::vector<uint8_t> pending, out;
  size_t pos = 1;
  // Handshake: arrive `step` bytes at a time; consume whole messages as the session does.
  while (pos < size && hs.state() != Handshake::State::transmission && hs.state() != Handshake::State::closed) {
    const size_t n = std::min(step, size - pos);
    pending.insert(pending.end(), data + pos, data + pos + n);
    pos += n;
    for (;;) {
      const size_t from = out.size();
      const size_t used = hs.feed(pending, out);
      if (used > pending.size()) broken("feed consumed more than it was given");
      check_replies(out, from, hs.state() == Handshake::State::transmission);
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(used));
      if (used == 0 || hs.state() == Handshake::State::transmission || hs.state() == Handshake::State::closed) break;
    }
    if (out.size() > (1u << 20)) out.clear();  // bounded memory for long option streams
  }
  if (hs.state() != Handshake::State::transmission) return;
  ExportLimits limits = hs.chosen().limits;
  limits.block_status = hs.block_status();  // as the session sets it
  // The bytes left over from the handshake come first, then the rest of the input.
  std::vector<uint8_t> rest(pending);
  rest.insert(rest.end(), data + pos, data + size);
  size_t at = 0;
  while (rest.size() - at >= kRequestSize) {
    auto r = parse_request(std::span<const uint8_t, kRequestSize>(rest.data() + at, kRequestSize));
    at += kRequestSize;
    if (!r) return;  // the session closes the connection here
    check_request(*r, limits);
    if (r->type == kCmdWrite) at += std::min<size_t>(r->length, rest.size() - at);
    if (r->type == kCmdDisc) return;
  }
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::fuzz::run(data, size);
  return 0;
}
