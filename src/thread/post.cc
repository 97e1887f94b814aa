// Deliveries that a full message ring must not lose: post() (tasks) and
// send_message_retrying() (plain messages) share one retry path.
#include "thread/post.h"

#include <chrono>
#include <thread>

#include "base/clock.h"
#include "base/log.h"
#include "thread/reactor.h"
#include "thread/registry.h"

namespace sluice::thread {
namespace {

constexpr uint64_t kForeignRetryNs = 1'000'000'000;

// A message the target's ring refused, owed until it goes. `drop` frees what `arg` owns if
// the message can never go (the target stopped).
struct Pending {
  Reactor* target;
  MsgFn fn;
  void* arg;
  void (*drop)(void*);
  Poller* poller = nullptr;
};

PollStatus retry_pending(void* arg) {
  auto* p = static_cast<Pending*>(arg);
  if (p->poller == nullptr) return PollStatus::busy;  // registered but not yet told its handle
  Status st = p->target->send(p->fn, p->arg);
  // Busy, not idle: a reactor must not fall asleep with a delivery still owed.
  if (st.code() == Errc::busy) return PollStatus::busy;
  if (st.ok()) {
    p->drop = nullptr;  // delivered: the message owns its argument now
  } else {
    log::warn("dropping a message for reactor {}: {}", p->target->id(), st.to_string());
  }
  (void)unregister_poller(p->poller);
  return PollStatus::busy;
}

void free_pending(void* arg) {
  auto* p = static_cast<Pending*>(arg);
  if (p->drop != nullptr) p->drop(p->arg);  // still set if the message was never delivered
  delete p;
}

void delete_task(void* task) { delete static_cast<detail::TaskBase*>(task); }

Status send_retrying(Reactor& target, MsgFn fn, void* arg, void (*drop)(void*)) {
  Status st = target.send(fn, arg);
  if (st.code() == Errc::busy) {
    if (current_reactor() != nullptr) {
      auto* p = new Pending{&target, fn, arg, drop};
      auto poller = detail::register_owned_poller(&retry_pending, p, &free_pending, 0, "send_retry");
      if (!poller.ok()) return poller.status();  // free_pending ran: dropped
      p->poller = poller.value();
      return Status::Ok();
    }
    const uint64_t deadline = clock::now_ns() + kForeignRetryNs;
    while (st.code() == Errc::busy && clock::now_ns() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      st = target.send(fn, arg);
    }
  }
  if (!st.ok()) {
    log::warn("dropping a message for reactor {}: {}", target.id(), st.to_string());
    if (drop != nullptr) drop(arg);
  }
  return st;
}

}  // namespace

void post(Reactor& target, Task task) {
  (void)send_retrying(target, &detail::run_and_delete_task, task.release(), &delete_task);
}

Status send_message_retrying(uint32_t reactor_id, MsgFn fn, void* arg) {
  Reactor* r = registry::lookup(reactor_id);
  if (r == nullptr) return registry::no_reactor(reactor_id);
  return send_retrying(*r, fn, arg, nullptr);
}

}  // namespace sluice::thread
