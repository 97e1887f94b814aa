// Names and netmasks (acl.h).
#include "target/iscsi/acl.h"

#include <arpa/inet.h>
#include <strings.h>

#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace sluice::iscsi {
namespace {

constexpr size_t kMaxIscsiName = 223;

bool all_hex(std::string_view s) {
  for (char c : s)
    if (!std::isxdigit(uint8_t(c))) return false;
  return !s.empty();
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

Status bad_name(std::string_view name, std::string_view why) {
  return Status(Errc::invalid_argument, fmt::format("iscsi: '{}' is not an iSCSI name: {}", name, why));
}

}  // namespace

Status check_iscsi_name(std::string_view name) {
  if (name.size() > kMaxIscsiName) return bad_name(name, "longer than 223 bytes");
  for (char c : name)
    if (!(std::isalnum(uint8_t(c)) || c == '-' || c == '.' || c == ':'))
      return bad_name(name, "only letters, digits, '-', '.' and ':' are allowed");
  const std::string_view prefix = name.substr(0, 4);
  if (iequal(prefix, "eui."))
    return name.size() == 20 && all_hex(name.substr(4)) ? Status::Ok() : bad_name(name, "eui. takes 16 hex digits");
  if (iequal(prefix, "naa."))
    return (name.size() == 20 || name.size() == 36) && all_hex(name.substr(4))
               ? Status::Ok()
               : bad_name(name, "naa. takes 16 or 32 hex digits");
  if (!iequal(prefix, "iqn.")) return bad_name(name, "it starts with neither iqn., eui. nor naa.");
  // iqn.yyyy-mm.<domain>
  const std::string_view d = name.substr(4);
  const bool date = d.size() >= 8 && all_hex(d.substr(0, 4)) && d[4] == '-' && std::isdigit(uint8_t(d[5])) &&
                    std::isdigit(uint8_t(d[6])) && d[7] == '.';
  if (!date || d.size() == 8) return bad_name(name, "iqn. takes a date yyyy-mm and a naming authority");
  return Status::Ok();
}

Status check_group_name(std::string_view entry) {
  if (!entry.empty() && entry[0] == '!') entry.remove_prefix(1);
  if (iequal(entry, "ANY")) return Status::Ok();
  return check_iscsi_name(entry);
}

NameVerdict match_name(const std::vector<std::string>& names, std::string_view initiator) {
  for (std::string_view n : names) {
    const bool deny = !n.empty() && n[0] == '!';
    if (deny) n.remove_prefix(1);
    if (iequal(n, "ANY") || iequal(n, initiator)) return deny ? NameVerdict::denied : NameVerdict::allowed;
  }
  return NameVerdict::no_match;
}

Result<Netmask> parse_netmask(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status(Errc::invalid_argument, fmt::format("iscsi: bad netmask '{}': {}", text, why));
  };
  Netmask m;
  if (iequal(text, "ANY")) {
    m.any = true;
    return m;
  }
  std::string_view addr = text, len;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("no ']'");
    addr = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != '/') return bad("text after ']' other than /prefix");
      len = rest.substr(1);
      if (len.empty()) return bad("an empty prefix length");
    }
    m.v6 = true;
  } else if (const size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    len = text.substr(slash + 1);
    if (len.empty()) return bad("an empty prefix length");
  }
  const std::string a(addr);
  if (m.v6) {
    if (inet_pton(AF_INET6, a.c_str(), m.bytes) != 1) return bad("not an IPv6 address");
  } else if (inet_pton(AF_INET, a.c_str(), m.bytes) != 1) {
    return bad("not an IPv4 address (IPv6 goes in brackets)");
  }
  const uint32_t bits = m.v6 ? 128 : 32;
  m.prefix = bits;
  if (!len.empty()) {
    auto [p, ec] = std::from_chars(len.data(), len.data() + len.size(), m.prefix);
    if (ec != std::errc() || p != len.data() + len.size() || m.prefix > bits)
      return bad(fmt::format("the prefix length must be 0..{}", bits));
  }
  return m;
}

bool netmask_matches(const Netmask& m, std::string_view address) {
  if (m.any) return true;
  uint8_t got[16] = {};
  const std::string a(address);
  bool v6 = false;
  if (inet_pton(AF_INET, a.c_str(), got) != 1) {
    if (inet_pton(AF_INET6, a.c_str(), got) != 1) return false;
    v6 = true;
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!m.v6 && std::equal(kMapped, kMapped + 12, got)) {
      std::copy(got + 12, got + 16, got);
      v6 = false;
    }
  }
  if (v6 != m.v6) return false;
  const uint32_t whole = m.prefix / 8, rest = m.prefix % 8;
  if (!std::equal(m.bytes, m.bytes + whole, got)) return false;
  if (rest == 0) return true;
  const uint8_t mask = uint8_t(0xff << (8 - rest));
  return (m.bytes[whole] & mask) == (got[whole] & mask);
}

}  // namespace sluice::iscsi
