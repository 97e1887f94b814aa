// The connections a server keeps on the calling reactor, and how one of them ends: the
// iSCSI, NVMe/TCP and NBD targets' teardown. A connection learns inside its own callbacks
// that it is done, so retire() takes it off the list at once (no close-all or listing finds
// it again) and destroys it from a message, once the callbacks on the stack have returned
// (thread::destroy_later).
#pragma once

#include <algorithm>
#include <vector>

#include "thread/thread.h"

namespace sluice::net {

// C frees itself in `void destroy()`, which this class must be able to call.
template <typename C>
class ReactorConnections {
 public:
  // The calling reactor's live connections of kind C.
  static const std::vector<C*>& live() { return list(); }
  // A copy to close connections from: close() may retire one and reshape the list.
  static std::vector<C*> snapshot() { return list(); }
  static void add(C* c) { list().push_back(c); }
  static void retire(C* c) {
    auto& v = list();
    v.erase(std::remove(v.begin(), v.end(), c), v.end());
    thread::destroy_later([](void* p) { static_cast<C*>(p)->destroy(); }, c);
  }

 private:
  static std::vector<C*>& list() {
    thread_local std::vector<C*> connections;
    return connections;
  }
};

}  // namespace sluice::net
