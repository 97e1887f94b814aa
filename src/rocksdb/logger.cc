// NewLogger: the info LOG in RocksDB's usual line format ("2026/11/22-07:59:19.123456 7f..
// message"), appended to a SluiceFS file. A failed write loses log lines, never more: RocksDB's
// own EnvLogger would assert (Debian builds it with assertions on) when written to again
// after an I/O error, e.g. on a failing device.
#include "rocksdb/sluice_file_system.h"

#include <pthread.h>
#include <sys/time.h>

#include <cstdio>
#include <ctime>
#include <mutex>

namespace sluice::rocksdb_plugin {
namespace {

class SluiceLogger final : public ::rocksdb::Logger {
 public:
  explicit SluiceLogger(std::unique_ptr<::rocksdb::FSWritableFile> file) : file_(std::move(file)) {}
  ~SluiceLogger() override { (void)Close(); }

  using Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    struct timeval now;
    gettimeofday(&now, nullptr);
    struct tm t;
    localtime_r(&now.tv_sec, &t);
    char head[64];
    int h = snprintf(head, sizeof(head), "%04d/%02d/%02d-%02d:%02d:%02d.%06ld %llx ", t.tm_year + 1900, t.tm_mon + 1,
                     t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<long>(now.tv_usec),
                     static_cast<unsigned long long>(pthread_self()));
    std::string line(head, static_cast<size_t>(h));
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(nullptr, 0, format, copy);
    va_end(copy);
    if (n > 0) {
      size_t at = line.size();
      line.resize(at + static_cast<size_t>(n) + 1);
      vsnprintf(line.data() + at, static_cast<size_t>(n) + 1, format, ap);
      line.resize(at + static_cast<size_t>(n));
    }
    if (line.back() != '\n') line += '\n';
    std::lock_guard lock(mu_);
    if (failed_ || closed_) return;
    ::rocksdb::IOOptions io;
    failed_ = !file_->Append(line, io, nullptr).ok();
    size_ += line.size();
    // Visible to readers soon, without a device write per line.
    const uint64_t now_us = static_cast<uint64_t>(now.tv_sec) * 1000000 + static_cast<uint64_t>(now.tv_usec);
    if (!failed_ && now_us - last_flush_us_ > 1000000) {
      failed_ = !file_->Flush(io, nullptr).ok();
      last_flush_us_ = now_us;
    }
  }
  size_t GetLogFileSize() const override {
    std::lock_guard lock(mu_);
    return size_;
  }
  void Flush() override {
    std::lock_guard lock(mu_);
    if (!failed_ && !closed_) failed_ = !file_->Flush({}, nullptr).ok();
  }

 protected:
  ::rocksdb::Status CloseImpl() override {
    std::lock_guard lock(mu_);
    if (closed_) return ::rocksdb::Status::OK();
    closed_ = true;
    ::rocksdb::IOStatus s = failed_ ? ::rocksdb::IOStatus::OK() : file_->Flush({}, nullptr);
    ::rocksdb::IOStatus c = file_->Close({}, nullptr);
    return s.ok() ? c : s;
  }

 private:
  mutable std::mutex mu_;
  std::unique_ptr<::rocksdb::FSWritableFile> file_;
  size_t size_ = 0;
  uint64_t last_flush_us_ = 0;
  bool failed_ = false;
  bool closed_ = false;
};

}  // namespace

::rocksdb::IOStatus new_sluice_logger(std::unique_ptr<::rocksdb::FSWritableFile> file,
                                      std::shared_ptr<::rocksdb::Logger>* result) {
  *result = std::make_shared<SluiceLogger>(std::move(file));
  return ::rocksdb::IOStatus::OK();
}

}  // namespace sluice::rocksdb_plugin
