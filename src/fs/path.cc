#include "fs/path.h"

#include <fmt/format.h>

namespace sluice::fs {

Status check_name(std::string_view name) {
  if (name.size() > kMaxName)
    return Status(Errc::name_too_long, fmt::format("bad name '{}': names are 1 to {} bytes", name, kMaxName));
  if (name.empty()) return Status(Errc::invalid_argument, fmt::format("bad name '': names are 1 to {} bytes", kMaxName));
  if (name == "." || name == "..") return Status(Errc::invalid_argument, fmt::format("bad name '{}'", name));
  if (name.find('\0') != std::string_view::npos)
    return Status(Errc::invalid_argument, "bad name: it contains a NUL byte");
  return Status::Ok();
}

Result<std::vector<std::string>> split_path(std::string_view path) {
  if (path.empty() || path.front() != '/')
    return Status(Errc::invalid_argument, fmt::format("bad path '{}': paths are absolute", path));
  std::vector<std::string> names;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = i;
    while (j < path.size() && path[j] != '/') ++j;
    if (j > i) {
      std::string_view name = path.substr(i, j - i);
      Status st = check_name(name);
      if (!st.ok()) return Status(st.code(), fmt::format("{} in path '{}'", st.message(), path));
      names.emplace_back(name);
    }
    i = j;
  }
  return names;
}

std::string join_path(const std::vector<std::string>& names) {
  if (names.empty()) return "/";
  std::string s;
  for (auto& n : names) s += "/" + n;
  return s;
}

}  // namespace sluice::fs
