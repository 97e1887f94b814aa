// Path parsing: absolute, '/'-separated; "//" and a trailing '/' are accepted; each name is
// 1..255 bytes without '/' or NUL, and not "." or "..".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::fs {

inline constexpr size_t kMaxName = 255;

Status check_name(std::string_view name);
// The names along `path` (empty for "/"). Errors name the path.
Result<std::vector<std::string>> split_path(std::string_view path);
// "/a/b" for {"a", "b"}.
std::string join_path(const std::vector<std::string>& names);

}  // namespace sluice::fs
