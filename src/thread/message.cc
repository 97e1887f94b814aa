// Cross-reactor messages and broadcasts.
#include <future>
#include <memory>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "thread/post.h"
#include "thread/reactor.h"
#include "thread/registry.h"

namespace sluice::thread {

namespace detail {
void run_and_delete_task(void* task) {
  std::unique_ptr<TaskBase> t(static_cast<TaskBase*>(task));
  t->run();
}
}  // namespace detail

namespace {

struct Broadcast {
  std::function<void()> fn;
  Task done;
  Reactor* origin;  // nullptr: sent from a foreign thread
  uint32_t next = 0;
};

void hop(std::unique_ptr<Broadcast> b) {
  b->fn();
  Reactor* target = registry::lookup(++b->next);
  if (target != nullptr) {
    post(*target, [b = std::move(b)]() mutable { hop(std::move(b)); });
    return;
  }
  if (!b->done) return;
  if (b->origin == nullptr || b->origin == current_reactor()) {
    b->done();
    return;
  }
  post(*b->origin, std::move(b->done));
}

}  // namespace

Status send_message(uint32_t reactor_id, MsgFn fn, void* arg) {
  Reactor* r = registry::lookup(reactor_id);
  if (r == nullptr) return registry::no_reactor(reactor_id);
  return r->send(fn, arg);
}

Status send_message(uint32_t reactor_id, Task task) {
  Reactor* r = registry::lookup(reactor_id);
  if (r == nullptr) return registry::no_reactor(reactor_id);
  detail::TaskBase* raw = task.release();
  Status st = r->send(&detail::run_and_delete_task, raw);
  if (!st.ok()) delete raw;
  return st;
}

namespace {
thread_local std::vector<std::pair<void (*)(void*), void*>> t_doomed;
thread_local bool t_reap_queued = false;
}  // namespace

void destroy_later(void (*destroy)(void* obj), void* obj) {
  t_doomed.emplace_back(destroy, obj);
  if (t_reap_queued) return;
  t_reap_queued = true;
  post(*current_reactor(), Task([] {
    t_reap_queued = false;
    auto doomed = std::move(t_doomed);
    t_doomed.clear();
    for (auto [fn, o] : doomed) fn(o);
  }));
}

Status call_and_wait(uint32_t reactor_id, std::function<Status()> fn, std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  SLUICE_RETURN_IF_ERROR(send_message(reactor_id, [promise, fn = std::move(fn)] { promise->set_value(fn()); }));
  if (future.wait_for(timeout) != std::future_status::ready)
    return Status(Errc::aborted, fmt::format("reactor {} did not answer within {} ms", reactor_id, timeout.count()));
  return future.get();
}

Status for_each_reactor(std::function<void()> fn, Task done) {
  auto b = std::make_unique<Broadcast>();
  b->fn = std::move(fn);
  b->done = std::move(done);
  b->origin = current_reactor();
  return send_message(0, [b = std::move(b)]() mutable { hop(std::move(b)); });
}

Status for_each_reactor(MsgFn fn, void* arg, MsgFn done, void* done_arg) {
  return for_each_reactor([fn, arg] { fn(arg); }, [done, done_arg] { done(done_arg); });
}

}  // namespace sluice::thread
