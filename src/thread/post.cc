#include "thread/post.h"

#include <chrono>
#include <thread>

#include "base/clock.h"
#include "base/log.h"
#include "thread/reactor.h"

namespace sluice::thread {
namespace {

constexpr uint64_t kForeignRetryNs = 1'000'000'000;

struct PendingPost {
  Reactor* target;
  detail::TaskBase* task;
  Poller* poller = nullptr;
};

PollStatus retry_post(void* arg) {
  auto* p = static_cast<PendingPost*>(arg);
  if (p->poller == nullptr) return PollStatus::busy;  // registered but not yet told its handle
  Status st = p->target->send(&detail::run_and_delete_task, p->task);
  // Busy, not idle: a reactor must not fall asleep with a delivery still owed.
  if (st.code() == Errc::busy) return PollStatus::busy;
  if (st.ok())
    p->task = nullptr;
  else
    log::warn("dropping a message for reactor {}: {}", p->target->id(), st.to_string());
  (void)unregister_poller(p->poller);
  return PollStatus::busy;
}

void free_pending_post(void* arg) {
  auto* p = static_cast<PendingPost*>(arg);
  delete p->task;  // still set if the message was never delivered
  delete p;
}

}  // namespace

void post(Reactor& target, Task task) {
  detail::TaskBase* raw = task.release();
  Status st = target.send(&detail::run_and_delete_task, raw);
  if (st.ok()) return;
  if (st.code() == Errc::busy) {
    if (current_reactor() != nullptr) {
      auto* p = new PendingPost{&target, raw};
      auto poller = detail::register_owned_poller(&retry_post, p, &free_pending_post, 0, "post_retry");
      if (poller.ok()) p->poller = poller.value();
      return;
    }
    const uint64_t deadline = clock::now_ns() + kForeignRetryNs;
    while (st.code() == Errc::busy && clock::now_ns() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      st = target.send(&detail::run_and_delete_task, raw);
    }
    if (st.ok()) return;
  }
  log::warn("dropping a message for reactor {}: {}", target.id(), st.to_string());
  delete raw;
}

}  // namespace sluice::thread
