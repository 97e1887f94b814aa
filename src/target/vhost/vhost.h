// The vhost-user target: Sluice bdevs as virtio-blk disks or virtio-scsi targets of QEMU
// virtual machines. QEMU (the
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
//   vhost::create_scsi_controller({"vhost.1"});       // 8 empty target slots
//   vhost::scsi_controller_add_target("vhost.1", 0, "malloc1");   // LUN 0 of target 0
//   qemu ... -device vhost-user-scsi-pci,chardev=c1,num_queues=1
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

// Adaptive polling: once a queue has nothing to do, its reactor polls it on for a few times
// the guest's recent gap between requests, but no longer than this, and then sleeps on the
// queue's kick; a guest whose requests come further apart than this is not polled for at all.
// Process-wide, any thread, for queues started afterwards; 50 us by default, 0 sleeps at once.
// More than the reactors' idle grace (1 ms by default) polls no longer than the grace.
inline constexpr uint32_t kDefaultMaxPollSpinUs = 50;
inline constexpr uint32_t kMaxPollSpinUs = 1000000;
void set_max_poll_spin_us(uint32_t us);
uint32_t max_poll_spin_us();

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
struct ScsiControllerOptions {
  std::string name;  // the socket's file name in socket_dir() (SPDK's "ctrlr")
  // Request queues at most (virtio-scsi's num_queues; QEMU's num_queues must not exceed it);
  // the control and event queues come on top.
  uint32_t num_queues = 16;
  Coalescing coalescing;
};

// A virtio-scsi controller with 8 empty target slots, listening on socket_dir()/name. Errors
// as create_blk_controller's.
Status create_scsi_controller(const ScsiControllerOptions& options);
// Puts a SCSI target with LUN 0 over `bdev` in slot `target` (0 to 7; -1: the first free
// one) and returns the slot; a connected guest that negotiated hot-plug is told (a rescan
// event). Errc::not_found for no such controller or bdev, Errc::invalid_argument for a bad
// slot or a blk controller, Errc::exists for a slot in use, Errc::no_space for none free.
Result<uint32_t> scsi_controller_add_target(std::string_view name, int64_t target, std::string_view bdev);
// Empties slot `target`: its new requests fail with BAD_TARGET, its tasks in flight finish,
// then its device and bdev handle go; the guest is told (a removed event). Errc::not_found
// for no such controller or an empty slot, Errc::aborted if its tasks did not finish in 5 s
// (the slot is empty anyway; the target goes when they do).
Status scsi_controller_remove_target(std::string_view name, int64_t target);

// Changes a controller's interrupt coalescing, for its live connection too. Errc::not_found
// for no such controller, Errc::invalid_argument for a delay over 1 s.
Status set_coalescing(std::string_view name, const Coalescing& coalescing);
// Stops listening, closes the front end's connection (its requests in flight complete first)
// and closes the bdev (every target's, for vhost-scsi). Errc::not_found for no such controller.
Status delete_controller(std::string_view name);

// A connection's counters (since the front end connected), virtio-blk's or virtio-scsi's.
struct BlkStats {
  uint64_t requests = 0;
  uint64_t errors = 0;              // completed with a status other than OK
  uint64_t bad_chains = 0;          // refused by the descriptor-chain walker
  uint64_t unaligned_requests = 0;  // a buffer the bdev cannot take as it is: copied through a bounce buffer
};

struct ScsiTargetInfo {
  uint32_t id = 0;  // the slot
  std::string bdev;  // LUN 0's
};

enum class ControllerType : uint8_t { blk, scsi };

struct ControllerInfo {
  std::string name;
  std::string socket;  // the socket's path
  std::string bdev;    // blk
  ControllerType type = ControllerType::blk;
  std::vector<ScsiTargetInfo> targets;  // scsi, in slot order
  uint32_t num_queues = 0;
  bool read_only = false;
  Coalescing coalescing;
  bool connected = false;  // a front end is connected
  BlkStats stats;          // its connection's, when connected
};
// In the order they were created.
std::vector<ControllerInfo> controllers();

}  // namespace sluice::vhost
