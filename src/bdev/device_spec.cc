#include "bdev/device_spec.h"

#include <sys/stat.h>

namespace sluice::bdev {

std::string device_spec(std::string_view arg) {
  std::string s(arg);
  struct stat st = {};
  if (::stat(s.c_str(), &st) == 0) return "uring:" + s;
  const auto colon = arg.find(':');
  if (colon == std::string_view::npos || colon == 0 || arg.substr(0, colon).find('/') != std::string_view::npos)
    return "uring:" + s;
  return s;
}

}  // namespace sluice::bdev
