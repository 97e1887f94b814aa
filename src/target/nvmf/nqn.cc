// NQN validation (NVMe base specification 1.4, 7.9): what a subsystem or host may be named.
#include <cctype>

#include <fmt/format.h>

#include "target/nvmf/nvmf.h"

namespace sluice::nvmf {
namespace {

constexpr std::string_view kUuidPrefix = "nqn.2014-08.org.nvmexpress:uuid:";

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// "YYYY-MM." with a month 01..12.
bool is_date(std::string_view s) {
  if (s.size() < 8 || s[4] != '-' || s[7] != '.') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6})
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  const int month = (s[5] - '0') * 10 + (s[6] - '0');
  return month >= 1 && month <= 12;
}

// A reverse domain name: dot-separated labels of letters, digits and '-', each starting
// with a letter and not ending with '-'.
bool is_reverse_domain(std::string_view s) {
  if (s.empty()) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('.', start);
    if (end == std::string_view::npos) end = s.size();
    std::string_view label = s.substr(start, end - start);
    if (label.empty() || label.size() > 63 || !std::isalpha(static_cast<unsigned char>(label.front())) ||
        label.back() == '-')
      return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

Status validate_nqn(std::string_view nqn) {
  auto bad = [&](std::string_view why) {
    return Status(Errc::invalid_argument, fmt::format("NQN '{}': {}", nqn, why));
  };
  if (nqn.size() > kMaxNqnLength) return bad(fmt::format("longer than {} bytes", kMaxNqnLength));
  if (nqn.substr(0, 4) != "nqn.") return bad("does not start with 'nqn.'");
  if (nqn.substr(0, kUuidPrefix.size()) == kUuidPrefix) {
    if (!is_uuid(nqn.substr(kUuidPrefix.size()))) return bad("the uuid form needs a UUID after 'uuid:'");
    return Status::Ok();
  }
  std::string_view rest = nqn.substr(4);
  if (!is_date(rest)) return bad("needs a date 'YYYY-MM.' after 'nqn.'");
  rest = rest.substr(8);
  const size_t colon = rest.find(':');
  if (!is_reverse_domain(rest.substr(0, colon))) return bad("needs a reverse domain name after the date");
  return Status::Ok();
}

}  // namespace sluice::nvmf
