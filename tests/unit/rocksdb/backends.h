// The file systems the RocksDB suites run against: RocksDB's POSIX FileSystem in a temp
// directory, and SluiceFS through the plugin (a malloc device; a uring device on a /tmp
// file). Each test gets a fresh one: the plugin's mount goes away with its last user.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <rocksdb/file_system.h>

#include "rocksdb/sluice_rocksdb.h"

namespace sluice::rocksdb_test {

struct Backend {
  std::string name;
  std::string uri;  // empty: POSIX
  bool uring_file = false;  // uri names a /tmp file to create first
};

inline void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

inline std::vector<Backend> all_backends() {
  std::vector<Backend> b = {{"posix", "", false}};
  b.push_back({"sluice_malloc", "sluice://malloc:96M", false});
  b.push_back({"sluice_uring", "sluice://uring:@FILE@?format=1", true});
  return b;
}

inline std::string backend_name(const testing::TestParamInfo<Backend>& info) { return info.param.name; }

// One backend, opened: `fs` and the directory tests work under.
class OpenBackend {
 public:
  explicit OpenBackend(const Backend& b) {
    char tmpl[] = "/tmp/sluice-rdb-XXXXXX";
    const char* made = mkdtemp(tmpl);
    if (made == nullptr) {
      error = "mkdtemp failed";
      return;
    }
    tmp_ = made;
    if (b.uri.empty()) {
      fs = ::rocksdb::FileSystem::Default();
      dir = tmp_ + "/work";
      std::filesystem::create_directories(dir);
      return;
    }
    std::string uri = b.uri;
    if (b.uring_file) {
      std::string image = tmp_ + "/image";
      std::filesystem::resize_file(create(image), 96u << 20);
      uri.replace(uri.find("@FILE@"), 6, image);
    }
    this->uri = uri;
    auto s = sluice::rocksdb_plugin::NewFileSystem(uri, &fs);
    if (!s.ok()) {
      error = s.ToString();
      return;
    }
    dir = "/work";
    (void)fs->CreateDirIfMissing(dir, {}, nullptr);
  }
  ~OpenBackend() {
    fs.reset();
    std::error_code ec;
    if (!tmp_.empty()) std::filesystem::remove_all(tmp_, ec);
  }

  std::string path(const std::string& name) const { return dir + "/" + name; }
  const std::string& tmp() const { return tmp_; }

  std::shared_ptr<::rocksdb::FileSystem> fs;
  std::string dir;
  std::string uri;  // for SluiceFS backends, with the image path filled in
  std::string error;

 private:
  static std::string create(const std::string& p) {
    FILE* f = fopen(p.c_str(), "w");
    if (f) fclose(f);
    return p;
  }
  std::string tmp_;
};

}  // namespace sluice::rocksdb_test
