// `sluice mount DEVICE MOUNTPOINT [--rw]`: SluiceFS through FUSE (fuse/fuse_fs.h,
// docs/fuse.md) so that host tools (ls, cp, du, RocksDB's ldb) see the files. It runs in the
// foreground until unmounted (fusermount3 -u, umount) or stopped (SIGINT, SIGTERM), then
// unmounts SluiceFS cleanly, so everything written through the mount is durable when it
// exits. Daemonizing is left to the caller (`&`, systemd): forking after SluiceFS has
// started its threads and rings would not be safe, and forking before would hide errors.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "blobtool/device.h"
#include "commands.h"
#include "fs/fs.h"
#include "fuse/fuse_fs.h"

namespace sluice::cli {
namespace {

constexpr std::string_view kMountCmd = "mount";

struct MountArgs {
  std::string device;
  std::string mountpoint;
  bool rw = false;
  unsigned threads = 4;
  bool allow_other = false;
};

int run_mount(const MountArgs& a) {
  struct stat mp = {};
  if (::stat(a.mountpoint.c_str(), &mp) != 0)
    return fail(kMountCmd, kExitFailure, fmt::format("{}: {}", a.mountpoint, std::strerror(errno)));
  if (!S_ISDIR(mp.st_mode)) return fail(kMountCmd, kExitFailure, fmt::format("{}: not a directory", a.mountpoint));
  if (::access("/dev/fuse", R_OK | W_OK) != 0)
    return fail(kMountCmd, kExitFailure, fmt::format("/dev/fuse: {} (is the fuse module loaded?)", std::strerror(errno)));

  auto dev = blobtool::Device::create(a.device);
  if (!dev.ok()) return fail(kMountCmd, exit_code_for(dev.status()), dev.status().message());
  fs::MountOptions mo;
  mo.read_only = !a.rw;
  // SluiceFS refuses a device another process (or mount) holds for writing, and a read-write
  // mount refuses any other holder (Bdev::lock_backing).
  auto mounted = fs::FileSystem::mount((*dev)->bdev_name(), mo);
  if (!mounted.ok()) return fail(kMountCmd, kExitFailure, mounted.status().message());

  fuse::FuseOptions fo;
  fo.read_only = !a.rw;
  fo.threads = a.threads;
  fo.allow_other = a.allow_other;
  Status served = fuse::run_fuse(**mounted, (*dev)->spec(), a.mountpoint, fo, [&] {
    fmt::print("mounted {} at {} ({})\n", (*dev)->spec(), a.mountpoint, a.rw ? "read-write" : "read-only");
    std::fflush(stdout);
  });
  Status st = (*mounted)->unmount();
  if (!st.ok()) {
    (*mounted)->abandon();
    return fail(kMountCmd, kExitFailure, fmt::format("unmount {}: {}", (*dev)->spec(), st.message()));
  }
  if (!served.ok()) return fail(kMountCmd, kExitFailure, served.message());
  return kExitOk;
}

}  // namespace

Subcommand add_mount(CLI::App& app) {
  auto a = std::make_shared<MountArgs>();
  CLI::App* c = app.add_subcommand("mount", "Serve a SluiceFS image through FUSE: DEVICE MOUNTPOINT");
  c->add_option("device", a->device, "Device spec (uring:PATH, aio:PATH, ...) or image path")->required();
  c->add_option("mountpoint", a->mountpoint, "An existing directory")->required();
  c->add_flag("--rw", a->rw, "Mount read-write (default: read-only)");
  c->add_option("--threads", a->threads, "FUSE request threads")->check(CLI::Range(1u, 64u))->capture_default_str();
  c->add_flag("--allow-other", a->allow_other, "Let other users in (needs user_allow_other in /etc/fuse.conf)");
  c->footer(
      "Runs in the foreground until unmounted (fusermount3 -u MOUNTPOINT) or stopped (Ctrl-C, SIGTERM), then\n"
      "unmounts SluiceFS cleanly. Refuses a device another process has open for writing; while mounted\n"
      "read-write, nobody else may open it. Exit status: 0 ok, 1 failure, 2 usage.");
  return Subcommand{c, [a] { return run_mount(*a); }};
}

}  // namespace sluice::cli
