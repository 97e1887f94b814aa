// An Env whose background jobs (flushes, compactions) run on its own thread pools, joined
// when the Env goes away. RocksDB's default pools live as long as the process, so their
// threads would still hold SluiceFS channels when a crash trial unmounts the image; threads
// that exit first give their channels back. Sleeps are capped at 1 ms: after a failed
// background job (every job fails once the power is cut) RocksDB waits a second on its clock.
#pragma once

#include <algorithm>
#include <array>
#include <memory>

#include <rocksdb/env.h>
#include <rocksdb/system_clock.h>
#include <rocksdb/threadpool.h>

namespace sluice::rocksdb_test {

class ShortSleepClock final : public ::rocksdb::SystemClockWrapper {
 public:
  using SystemClockWrapper::SystemClockWrapper;
  const char* Name() const override { return "ShortSleepClock"; }
  void SleepForMicroseconds(int micros) override { target_->SleepForMicroseconds(std::min(micros, 1000)); }
};

class PrivatePoolEnv final : public ::rocksdb::EnvWrapper {
 public:
  explicit PrivatePoolEnv(std::unique_ptr<::rocksdb::Env> base) : EnvWrapper(std::move(base)) {
    for (auto& p : pools_) p.reset(::rocksdb::NewThreadPool(1));
    system_clock_ = std::make_shared<ShortSleepClock>(system_clock_);
  }
  ~PrivatePoolEnv() override {
    for (auto& p : pools_) p->WaitForJobsAndJoinAllThreads();
  }

  const char* Name() const override { return "PrivatePoolEnv"; }

  void Schedule(void (*fn)(void*), void* arg, Priority pri, void*, void (*)(void*)) override {
    pools_[pri]->SubmitJob([fn, arg] { fn(arg); });
  }
  // Queued jobs are not cancelled: RocksDB then waits for them, and they see the shutdown.
  int UnSchedule(void*, Priority) override { return 0; }
  void SetBackgroundThreads(int n, Priority pri) override { pools_[pri]->SetBackgroundThreads(n); }
  int GetBackgroundThreads(Priority pri) override { return pools_[pri]->GetBackgroundThreads(); }
  void IncBackgroundThreadsIfNeeded(int n, Priority pri) override {
    if (pools_[pri]->GetBackgroundThreads() < n) pools_[pri]->SetBackgroundThreads(n);
  }
  unsigned int GetThreadPoolQueueLen(Priority pri) const override { return pools_[pri]->GetQueueLen(); }
  void SleepForMicroseconds(int micros) override { EnvWrapper::SleepForMicroseconds(std::min(micros, 1000)); }

 private:
  std::array<std::unique_ptr<::rocksdb::ThreadPool>, ::rocksdb::Env::TOTAL> pools_;
};

}  // namespace sluice::rocksdb_test
