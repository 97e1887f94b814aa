// Task: a move-only void() callable for the control path (starting an app, one-off messages,
// shutdown steps). std::function cannot hold a lambda that owns a unique_ptr, and control
// messages often own the state they hand over. Building a Task allocates; the data path
// sends plain {fn, arg} messages instead.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace sluice::thread {

namespace detail {

struct TaskBase {
  virtual ~TaskBase() = default;
  virtual void run() = 0;
};

template <typename F>
struct TaskOf final : TaskBase {
  explicit TaskOf(F&& fn) : f(std::move(fn)) {}
  explicit TaskOf(const F& fn) : f(fn) {}
  void run() override { f(); }
  F f;
};

// The message function that carries a Task across a ring: runs it, then frees it. A reactor
// also recognises it among undelivered messages at teardown and frees those unrun, so a
// stopped reactor leaks nothing.
void run_and_delete_task(void* task);

}  // namespace detail

class Task {
 public:
  Task() = default;
  template <typename F>
    requires(!std::is_same_v<std::decay_t<F>, Task> && std::is_invocable_r_v<void, std::decay_t<F>&>)
  Task(F&& f)  // NOLINT: implicit so that a lambda can be passed where a Task is expected
      : p_(new detail::TaskOf<std::decay_t<F>>(std::forward<F>(f))) {}

  explicit operator bool() const { return p_ != nullptr; }
  void operator()() { p_->run(); }

  // Hand-off to and from a raw message (see run_and_delete_task).
  detail::TaskBase* release() { return p_.release(); }
  static Task adopt(detail::TaskBase* raw) {
    Task t;
    t.p_.reset(raw);
    return t;
  }

 private:
  std::unique_ptr<detail::TaskBase> p_;
};

}  // namespace sluice::thread
