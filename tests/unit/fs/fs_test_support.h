// Shared fixture of the SluiceFS unit tests: a formatted device on each backend (malloc, and
// uring on a file in /tmp), mounted; helpers for patterned data.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "blob/blob.h"
#include "fs/fs.h"

#include "temp_file.h"

namespace sluice::fs::testing {

// Bytes that depend on (seed, position): misplaced or stale data never matches.
inline std::string pattern(uint64_t seed, size_t n, uint64_t start = 0) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull ^ ((start + i) * 0xBF58476D1CE4E5B9ull);
    x ^= x >> 29;
    s[i] = static_cast<char>(x * 0x94D049BB133111EBull >> 56);
  }
  return s;
}

inline std::string read_all(File& f) {
  std::string out(f.size(), '\0');
  size_t got = 0;
  while (got < out.size()) {
    auto r = f.pread(out.data() + got, out.size() - got, got);
    if (!r.ok() || *r == 0) break;
    got += *r;
  }
  out.resize(got);
  return out;
}

struct Backend {
  std::string name;
  std::string spec;  // empty: a uring file made by the fixture
  uint64_t size;
};

inline void PrintTo(const Backend& b, std::ostream* os) { *os << b.name; }

inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) { return info.param.name; }

class FsTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    const Backend& b = GetParam();
    std::string spec = b.spec;
    if (spec.empty()) {
      file_ = std::make_unique<sluice::testing::TempFile>(b.size);
      ASSERT_FALSE(file_->path().empty());
      spec = "uring:" + file_->path();
    }
    dev_ = "fsdev";
    auto made = bdev::create(spec, dev_);
    ASSERT_TRUE(made.ok()) << made.status().to_string();
    FormatOptions fo;
    fo.cluster_size = cluster_;
    Status st = FileSystem::format(dev_, fo);
    ASSERT_TRUE(st.ok()) << st.to_string();
    remount();
  }
  void TearDown() override {
    if (fs_) {
      Status st = fs_->unmount();
      EXPECT_TRUE(st.ok()) << st.to_string();
      fs_.reset();
    }
    (void)bdev::unregister(dev_);
  }
  void remount(const MountOptions& mo = {}) {
    if (fs_) {
      Status st = fs_->unmount();
      ASSERT_TRUE(st.ok()) << st.to_string();
      fs_.reset();
    }
    auto m = FileSystem::mount(dev_, mo);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    fs_ = std::move(m.value());
  }
  std::unique_ptr<File> open_w(const std::string& path, bool truncate = false) {
    auto f = fs_->open(path, {.write = true, .create = true, .truncate = truncate});
    EXPECT_TRUE(f.ok()) << path << ": " << f.status().to_string();
    return f.ok() ? std::move(f.value()) : nullptr;
  }
  std::unique_ptr<File> open_r(const std::string& path) {
    auto f = fs_->open(path, {});
    EXPECT_TRUE(f.ok()) << path << ": " << f.status().to_string();
    return f.ok() ? std::move(f.value()) : nullptr;
  }
  void write_file(const std::string& path, const std::string& data) {
    auto f = open_w(path, true);
    ASSERT_TRUE(f);
    ASSERT_TRUE(f->append(data.data(), data.size()).ok());
    ASSERT_TRUE(f->sync().ok());
    ASSERT_TRUE(f->close().ok());
  }
  std::string slurp(const std::string& path) {
    auto f = open_r(path);
    if (!f) return "<missing>";
    std::string s = read_all(*f);
    EXPECT_TRUE(f->close().ok());
    return s;
  }

  uint32_t cluster_ = 64 * 1024;
  std::string dev_;
  std::unique_ptr<sluice::testing::TempFile> file_;
  std::unique_ptr<FileSystem> fs_;
};

inline std::vector<Backend> backends() {
  return {{"malloc", "malloc:32M", 0}, {"uring", "", 32u << 20}};
}

}  // namespace sluice::fs::testing
