// Intrusive singly linked FIFO: O(1) push/pop with no allocation. The element carries the
// link, so queuing a request never touches the heap.
#pragma once

namespace sluice {

template <typename T, T* T::*Next = &T::next>
class IntrusiveQueue {
 public:
  bool empty() const { return head_ == nullptr; }
  T* front() const { return head_; }

  void push_back(T* e) {
    e->*Next = nullptr;
    if (tail_) tail_->*Next = e; else head_ = e;
    tail_ = e;
  }
  void push_front(T* e) {
    e->*Next = head_;
    head_ = e;
    if (!tail_) tail_ = e;
  }
  T* pop_front() {
    T* e = head_;
    if (e) {
      head_ = e->*Next;
      if (!head_) tail_ = nullptr;
      e->*Next = nullptr;
    }
    return e;
  }
  // Moves every element out, leaving this empty; lets a loop process a batch while new
  // elements queue up for the next round.
  IntrusiveQueue take_all() {
    IntrusiveQueue out;
    out.head_ = head_;
    out.tail_ = tail_;
    head_ = tail_ = nullptr;
    return out;
  }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
};

}  // namespace sluice
