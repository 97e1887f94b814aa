#include "base/number.h"

#include <charconv>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

namespace sluice {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

Result<uint64_t> parse_uint(std::string_view text, uint64_t min, uint64_t max) {
  if (text.empty() || !is_digit(text.front()))
    return Status(Errc::invalid_argument, fmt::format("'{}' is not a whole number", text));
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, 10);
  if (ec == std::errc::result_out_of_range) {
    while (end != text.data() + text.size() && is_digit(*end)) ++end;
    if (end == text.data() + text.size())
      return Status(Errc::out_of_range, fmt::format("{} is out of range [{}, {}]", text, min, max));
  }
  if (ec != std::errc() || end != text.data() + text.size())
    return Status(Errc::invalid_argument, fmt::format("'{}' is not a whole number", text));
  if (v < min || v > max) return Status(Errc::out_of_range, fmt::format("{} is out of range [{}, {}]", text, min, max));
  return v;
}

Result<double> parse_decimal(std::string_view text, double min, double max) {
  size_t digits = 0, dots = 0, others = 0;
  for (char c : text) {
    if (is_digit(c)) ++digits;
    else if (c == '.') ++dots;
    else ++others;
  }
  if (digits == 0 || dots > 1 || others > 0) return Status(Errc::invalid_argument, fmt::format("'{}' is not a decimal number", text));
  const double v = std::strtod(std::string(text).c_str(), nullptr);  // the syntax is checked: all of it converts
  if (!(v >= min && v <= max))
    return Status(Errc::out_of_range, fmt::format("{} is out of range [{}, {}]", text, min, max));
  return v;
}

}  // namespace sluice
