// Fuzz target: SluiceFS's decoders of bytes read back from a device (src/fs/format.h: the
// directory entry and inode state attributes, the tail marker, the identity attribute) and
// the RocksDB plugin's URI parser (src/rocksdb/sluice_uri.h), which reads user input.
//
// Input: byte 0 chooses the decoder, the rest is its input. Promises checked:
//   - nothing crashes, leaks or hangs on any input;
//   - whatever decodes re-encodes to bytes that decode to the same value;
//   - a decoded marker or entry is what its encoder would write (no hidden slack accepted
//     as valid, so a torn or stale marker cannot pass for a real one).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "fs/format.h"
#include "rocksdb/sluice_uri.h"

namespace sluice::fuzz {
namespace {

[[noreturn]] void broken(const std::string& what) {
  std::fprintf(stderr, "fs_records_fuzz: BROKEN PROMISE: %s\n", what.c_str());
  std::abort();
}

void entry(std::string_view in) {
  auto e = fs::decode_entry(in);
  if (!e.ok()) return;
  auto again = fs::decode_entry(fs::encode_entry(*e));
  if (!again.ok() || again->kind != e->kind || again->parent != e->parent || again->name != e->name)
    broken("an entry does not survive re-encoding");
}

void state(std::string_view in) {
  auto s = fs::decode_state(in);
  if (!s.ok()) return;
  auto again = fs::decode_state(fs::encode_state(*s));
  if (!again.ok() || again->size != s->size || again->gen != s->gen || again->mtime_ns != s->mtime_ns ||
      again->flags != s->flags)
    broken("an inode state does not survive re-encoding");
}

void marker(std::string_view in) {
  if (in.size() < fs::kMarkerSize) return;
  auto m = fs::decode_marker(in.data());
  if (!m) return;
  std::vector<char> out(fs::kMarkerSize);
  fs::encode_marker(*m, out.data());
  if (std::memcmp(out.data(), in.data(), fs::kMarkerSize) != 0)
    broken("a marker decoded from bytes its encoder would not write");
  if (m->base > m->length) broken(fmt::format("a marker with base {} beyond its length {}", m->base, m->length));
}

void identity(std::string_view in) { (void)fs::check_identity(in); }

void uri(std::string_view in) {
  auto u = rocksdb_plugin::parse_uri(in);
  if (!u.ok()) {
    if (u.status().message().empty()) broken("a URI refused without a message");
    return;
  }
  if (u->device.empty()) broken("a URI accepted without a device");
  if (u->root.empty() || u->root[0] != '/') broken(fmt::format("root '{}' is not absolute", u->root));
  if (rocksdb_plugin::normalize_path(u->root) != u->root) broken(fmt::format("root '{}' is not normalized", u->root));
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::fuzz;
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: entry(in); break;
    case 1: state(in); break;
    case 2: marker(in); break;
    case 3: identity(in); break;
    default: uri(in); break;
  }
  return 0;
}
