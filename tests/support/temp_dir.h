// A temporary directory in $TMPDIR (or /tmp), removed with what is left in it; path() is
// empty if it could not be made. For Unix sockets inside it, keep names short (108 bytes).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace sluice::testing {

class TempDir {
 public:
  TempDir() {
    const char* dir = std::getenv("TMPDIR");
    std::string tmpl = std::string(dir ? dir : "/tmp") + "/sluice-test-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace sluice::testing
