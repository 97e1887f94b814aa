// CHAP, target side (chap.h).
#include "target/iscsi/chap.h"

#include <nettle/md5.h>
#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace sluice::iscsi {
namespace {

Status auth_error(std::string message) { return {Errc::permission, std::move(message)}; }

void getrandom_fill(uint8_t* out, size_t n) {
  while (n > 0) {
    const ssize_t r = ::getrandom(out, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      std::abort();  // no entropy source at all: nothing safe to fall back to
    }
    out += r;
    n -= static_cast<size_t>(r);
  }
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int base64_digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::optional<std::vector<uint8_t>> decode_hex(std::string_view s, size_t max) {
  // An odd count means a leading zero nibble was left out.
  if (s.empty() || (s.size() + 1) / 2 > max) return std::nullopt;
  std::vector<uint8_t> out;
  size_t i = 0;
  if (s.size() % 2 == 1) {
    const int d = hex_digit(s[0]);
    if (d < 0) return std::nullopt;
    out.push_back(uint8_t(d));
    i = 1;
  }
  for (; i < s.size(); i += 2) {
    const int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(uint8_t(hi << 4 | lo));
  }
  return out;
}

std::optional<std::vector<uint8_t>> decode_base64(std::string_view s, size_t max) {
  if (s.empty() || s.size() % 4 != 0 || s.size() / 4 * 3 > max + 2) return std::nullopt;
  size_t pad = 0;
  while (pad < 2 && s.size() > pad && s[s.size() - 1 - pad] == '=') ++pad;
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  for (size_t i = 0; i < s.size() - pad; ++i) {
    const int d = base64_digit(s[i]);
    if (d < 0) return std::nullopt;
    acc = acc << 6 | uint32_t(d);
    if (i % 4 == 3) {
      out.push_back(uint8_t(acc >> 16));
      out.push_back(uint8_t(acc >> 8));
      out.push_back(uint8_t(acc));
      acc = 0;
    }
  }
  // Canonical only: the bits the padding drops must be zero.
  if (pad == 1) {
    if (acc & 0x3) return std::nullopt;
    out.push_back(uint8_t(acc >> 10));
    out.push_back(uint8_t(acc >> 2));
  } else if (pad == 2) {
    if (acc & 0xf) return std::nullopt;
    out.push_back(uint8_t(acc >> 4));
  }
  if (out.empty() || out.size() > max) return std::nullopt;
  return out;
}

bool equal_in_constant_time(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  if (a.size() != b.size()) return false;
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

// CHAP_I: a decimal (or 0x hex) number 0..255.
std::optional<uint8_t> parse_id(std::string_view v) {
  if (v.empty() || v.size() > 6) return std::nullopt;
  unsigned n = 0;
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    for (char c : v.substr(2)) {
      const int d = hex_digit(c);
      if (d < 0) return std::nullopt;
      n = n * 16 + unsigned(d);
    }
  } else {
    for (char c : v) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + unsigned(c - '0');
    }
  }
  if (n > 255) return std::nullopt;
  return uint8_t(n);
}

}  // namespace

Status check_credentials(const ChapCredentials& c) {
  auto check = [](std::string_view what, std::string_view secret) -> Status {
    if (secret.size() < kMinChapSecret || secret.size() > kMaxChapSecret)
      return {Errc::invalid_argument, std::string(what) + " CHAP secret is " + std::to_string(secret.size()) +
                                          " bytes; it must be " + std::to_string(kMinChapSecret) + ".." +
                                          std::to_string(kMaxChapSecret)};
    return {};
  };
  if (c.initiator_name.empty()) return {Errc::invalid_argument, "CHAP needs the initiator's user name"};
  SLUICE_RETURN_IF_ERROR(check("the initiator's", c.initiator_secret));
  if (c.mutual()) {
    SLUICE_RETURN_IF_ERROR(check("the target's", c.target_secret));
    if (c.target_name.empty()) return {Errc::invalid_argument, "mutual CHAP needs the target's user name"};
    if (c.target_secret == c.initiator_secret)
      return {Errc::invalid_argument, "mutual CHAP needs a different secret in each direction"};
  }
  return {};
}

ChapDigest chap_response(uint8_t id, std::string_view secret, std::span<const uint8_t> challenge) {
  md5_ctx ctx;
  md5_init(&ctx);
  md5_update(&ctx, 1, &id);
  md5_update(&ctx, secret.size(), reinterpret_cast<const uint8_t*>(secret.data()));
  md5_update(&ctx, challenge.size(), challenge.data());
  ChapDigest out;
  md5_digest(&ctx, out.size(), out.data());
  return out;
}

std::optional<std::vector<uint8_t>> decode_binary(std::string_view value, size_t max) {
  if (value.size() < 3 || value[0] != '0') return std::nullopt;
  if (value[1] == 'x' || value[1] == 'X') return decode_hex(value.substr(2), max);
  if (value[1] == 'b' || value[1] == 'B') return decode_base64(value.substr(2), max);
  return std::nullopt;
}

std::string encode_hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 0xf];
  }
  return s;
}

ChapTarget::ChapTarget(ChapCredentials credentials, RandomSource random)
    : creds_(std::move(credentials)), random_(random ? std::move(random) : RandomSource(getrandom_fill)) {}

Status ChapTarget::fail(std::string message) {
  state_ = State::failed;
  return auth_error("CHAP: " + std::move(message));
}

Status ChapTarget::handle(const std::vector<KeyValue>& keys, std::string& response) {
  const KeyValue* a = find_key(keys, "CHAP_A");
  const KeyValue* n = find_key(keys, "CHAP_N");
  const KeyValue* r = find_key(keys, "CHAP_R");
  const KeyValue* i = find_key(keys, "CHAP_I");
  const KeyValue* c = find_key(keys, "CHAP_C");
  switch (state_) {
    case State::want_algorithm: {
      if (a == nullptr || n || r || i || c) return fail("expected CHAP_A alone first");
      bool md5 = false;
      for (size_t at = 0; at <= a->value.size();) {
        const size_t comma = std::min(a->value.find(',', at), a->value.size());
        if (std::string_view(a->value).substr(at, comma - at) == "5") md5 = true;
        at = comma + 1;
      }
      if (!md5) {
        append_key(response, "CHAP_A", "Reject");
        return fail("the initiator offers no algorithm the target has (only 5, MD5): CHAP_A=" + a->value);
      }
      random_(&id_, 1);
      random_(challenge_.data(), challenge_.size());
      append_key(response, "CHAP_A", "5");
      append_key(response, "CHAP_I", std::to_string(id_));
      append_key(response, "CHAP_C", encode_hex(challenge_));
      state_ = State::want_response;
      return {};
    }
    case State::want_response: {
      if (a != nullptr) return fail("CHAP_A sent twice");
      if (n == nullptr || r == nullptr) return fail("expected CHAP_N and CHAP_R");
      if ((i == nullptr) != (c == nullptr)) return fail("CHAP_I and CHAP_C go together");
      if (lookup_) {
        auto found = lookup_(n->value);
        if (!found) return fail("unknown CHAP name '" + n->value + "'");
        creds_ = std::move(*found);
      }
      if (n->value != creds_.initiator_name) return fail("unknown CHAP name '" + n->value + "'");
      const auto got = decode_binary(r->value, kChapDigestSize);
      if (!got || got->size() != kChapDigestSize) return fail("CHAP_R is not a 16-byte binary value");
      const ChapDigest want = chap_response(id_, creds_.initiator_secret, challenge_);
      if (!equal_in_constant_time(*got, want)) return fail("wrong CHAP_R for '" + n->value + "'");
      if (c == nullptr) {
        if (creds_.mutual()) return fail("the target requires mutual CHAP, but the initiator sent no challenge");
        state_ = State::done;
        return {};
      }
      if (!creds_.mutual()) return fail("the initiator asks for mutual CHAP, which is not configured");
      const auto id = parse_id(i->value);
      if (!id) return fail("CHAP_I '" + i->value + "' is not a number 0..255");
      const auto challenge = decode_binary(c->value, kMaxChapChallenge);
      if (!challenge) return fail("CHAP_C is not a binary value of 1.." + std::to_string(kMaxChapChallenge) + " bytes");
      if (equal_in_constant_time(*challenge, challenge_)) return fail("the initiator sent back the target's challenge");
      append_key(response, "CHAP_N", creds_.target_name);
      append_key(response, "CHAP_R", encode_hex(chap_response(*id, creds_.target_secret, *challenge)));
      state_ = State::done;
      return {};
    }
    case State::done:
      if (a || n || r || i || c) return fail("CHAP keys after authentication finished");
      return {};
    case State::failed: return auth_error("CHAP: authentication already failed");
  }
  return {};
}

}  // namespace sluice::iscsi
