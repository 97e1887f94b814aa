// A fixed set of request slots and the stack of the free ones: a target queue's (or
// connection's) request pool. Taking and returning a slot touch neither the heap nor a lock,
// and the slots never move, so a slot's address may ride in callbacks while it is taken.
#pragma once

#include <cstddef>
#include <vector>

namespace sluice {

// T carries the link (`T* next_free`), as an IntrusiveQueue element carries `next`.
template <typename T>
class SlotPool {
 public:
  explicit SlotPool(size_t slots) : slots_(slots) {
    for (T& s : slots_) put_back(&s);
  }
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  // Every slot, taken or not: for setting up what each slot keeps for its life.
  std::vector<T>& slots() { return slots_; }
  bool empty() const { return free_ == nullptr; }
  // Only when !empty().
  T* take() {
    T* s = free_;
    free_ = s->next_free;
    return s;
  }
  void put_back(T* s) {
    s->next_free = free_;
    free_ = s;
  }

 private:
  std::vector<T> slots_;
  T* free_ = nullptr;
};

}  // namespace sluice
