// Numbers typed by people (command lines, device specs), read strictly so that a typo is an
// error and not another number: strtoul and friends take "1abc" as 1, "010" as 8, "0x10" as
// 16 and "-1" as 2^64-1.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/status.h"

namespace sluice {

// All of `text` is decimal digits (no sign, space, base prefix or suffix) making a number in
// [min, max]. Errors: invalid_argument for anything else, out_of_range outside the bounds.
Result<uint64_t> parse_uint(std::string_view text, uint64_t min = 0, uint64_t max = UINT64_MAX);

// Decimal digits with at most one '.' ("2", "0.5", ".5"), in [min, max]; no sign, exponent,
// inf or nan. Errors as parse_uint's.
Result<double> parse_decimal(std::string_view text, double min, double max);

}  // namespace sluice
