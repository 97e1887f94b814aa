// The running App's reactors by id, for senders that name a reactor by number.
//
// Lookups are lock-free (one acquire load and an index) because send_message() is on the
// data path. The price: the table must outlive every sender, so sending while the App is
// being destroyed is the caller's error, as using any freed object would be.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"

namespace sluice::thread {

class Reactor;

namespace registry {

// Fails if another App's reactors are installed: one App per process.
bool install(const std::vector<Reactor*>& reactors);
// After every reactor has stopped. With keep_table, the table is leaked on purpose, for
// reactor threads that could not be joined and may still look it up.
void uninstall(bool keep_table);
Reactor* lookup(uint32_t id);
uint32_t count();
// The error of a sender whose reactor id lookup() did not find: Errc::not_found, naming the
// id and how many reactors run.
Status no_reactor(uint32_t id);

}  // namespace registry
}  // namespace sluice::thread
