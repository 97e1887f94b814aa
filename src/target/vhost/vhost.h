// The vhost-user target: Sluice bdevs as virtio-blk disks of QEMU virtual machines. QEMU (the
// front end) connects to one Unix socket per controller, shares the guest's memory, and the
// guest's requests are read from its virtqueues and run on the reactors, without a copy and
// without QEMU on the I/O path.
//
//   vhost::set_socket_dir("/var/tmp");                 // sluice serve -S DIR
//   vhost::create_blk_controller({"vhost.0", "malloc0"});   // listens on /var/tmp/vhost.0
//   qemu ... -chardev socket,id=c0,path=/var/tmp/vhost.0
//            -device vhost-user-blk-pci,chardev=c0,num-queues=1
//            -object memory-backend-memfd,id=mem,size=1G,share=on -numa node,memdev=mem
//   vhost::delete_controller("vhost.0");              // disconnects QEMU first
//
// Threads: every function here is control path, called from a thread that is NOT a reactor
// (the JSON-RPC daemon's control thread, a test's main thread) while the App's reactors run;
// on a reactor they refuse (Errc::invalid_argument), since they wait for the reactors.
//
// Data path: a controller serves one front end at a time. Its connection, the session's
// state machine and every queue of it run on the reactor the connection was handed to;
// each queue has a poller, a channel to the bdev and a preallocated request pool.
//
// Errors: a malformed message, a request the back end does not implement or a bad ring
// closes that connection with a logged reason; a bad descriptor chain fails that request
// (or marks its queue broken); nothing a front end or guest sends makes the back end touch
// memory outside what was shared. Deleting a controller, or hot-removing its bdev, fails
// the guest's I/O rather than crashing anything.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::vhost {

// Where controllers' sockets go (SPDK's -S); the current directory by default. Takes effect
// for controllers created afterwards.
Status set_socket_dir(std::string_view dir);
std::string socket_dir();

// Interrupt coalescing (SPDK's vhost_controller_set_coalescing): while a queue completes
// more than iops_threshold requests per second, its interrupt waits up to delay_base_us
// for more completions to share it. delay_base_us 0 turns it off (the default).
struct Coalescing {
  uint32_t delay_base_us = 0;
  uint32_t iops_threshold = 60000;
  bool operator==(const Coalescing&) const = default;
};

struct BlkControllerOptions {
  std::string name;  // the socket's file name in socket_dir() (SPDK's "ctrlr")
  std::string bdev;  // SPDK's "dev_name"
  // The most queues a front end may use (GET_QUEUE_NUM); QEMU's num-queues (by default its
  // vCPU count) must not exceed it. Unused queues cost nothing.
  uint32_t num_queues = 16;
  bool read_only = false;
  Coalescing coalescing;
};

// Opens the bdev and listens on socket_dir()/name. Errc::exists for a name in use,
// Errc::not_found for no such bdev, Errc::invalid_argument for a bad name or queue count.
Status create_blk_controller(const BlkControllerOptions& options);
// Changes a controller's interrupt coalescing, for its live connection too. Errc::not_found
// for no such controller, Errc::invalid_argument for a delay over 1 s.
Status set_coalescing(std::string_view name, const Coalescing& coalescing);
// Stops listening, closes the front end's connection (its requests in flight complete first)
// and closes the bdev. Errc::not_found for no such controller.
Status delete_controller(std::string_view name);

// A connection's virtio-blk counters (since the front end connected).
struct BlkStats {
  uint64_t requests = 0;
  uint64_t errors = 0;              // completed with a status other than OK
  uint64_t bad_chains = 0;          // refused by the descriptor-chain walker
  uint64_t unaligned_requests = 0;  // failed: a buffer the bdev cannot take (no bounce yet)
};

struct ControllerInfo {
  std::string name;
  std::string socket;  // the socket's path
  std::string bdev;
  uint32_t num_queues = 0;
  bool read_only = false;
  Coalescing coalescing;
  bool connected = false;  // a front end is connected
  BlkStats stats;          // its connection's, when connected
};
// In the order they were created.
std::vector<ControllerInfo> controllers();

}  // namespace sluice::vhost
