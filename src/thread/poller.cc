#include "thread/poller.h"

#include <fmt/format.h>

#include "thread/reactor.h"

namespace sluice::thread {

namespace detail {
Result<Poller*> register_owned_poller(PollFn fn, void* arg, void (*destroy)(void*), uint64_t period_us,
                                      std::string_view name) {
  Reactor* r = current_reactor();
  if (r == nullptr) {
    if (destroy != nullptr) destroy(arg);
    return Status(Errc::invalid_argument,
                  fmt::format("poller '{}' must be registered on a reactor; send it a message to do so", name));
  }
  return r->add_poller(fn, arg, destroy, period_us, name);
}
}  // namespace detail

Result<Poller*> register_poller(PollFn fn, void* arg, uint64_t period_us, std::string_view name) {
  return detail::register_owned_poller(fn, arg, nullptr, period_us, name);
}

Status unregister_poller(Poller* poller) {
  if (poller == nullptr) return Status(Errc::invalid_argument, "unregister_poller(nullptr)");
  Reactor* r = current_reactor();
  // A linear search, on the control path, turns a poller handed to the wrong reactor (or
  // already freed) into an error instead of a data race; so the handle is not dereferenced
  // before it is found.
  if (r == nullptr || !r->owns(poller))
    return Status(Errc::invalid_argument,
                  "a poller must be unregistered once, on the reactor that registered it");
  if (poller->removed) return Status(Errc::invalid_argument, fmt::format("poller '{}' unregistered twice", poller->name));
  r->remove_poller(poller);
  return Status::Ok();
}

}  // namespace sluice::thread
