// run_fuse(): one FUSE session from mount to unmount. libfuse's own signal handlers end the
// loop (SIGINT, SIGTERM, SIGHUP), as does an unmount from outside (fusermount3 -u), which
// makes the kernel end the session; either way the loop returns here and we unmount.
#define FUSE_USE_VERSION 312
#include <fuse.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "fuse/fuse_fs.h"

namespace sluice::fuse {
namespace {

// libfuse parses its options from an argv; this builds one and frees it.
class Args {
 public:
  Args() { add("sluice"); }
  ~Args() { fuse_opt_free_args(&args_); }
  Args(const Args&) = delete;
  Args& operator=(const Args&) = delete;
  void add(const std::string& a) { (void)fuse_opt_add_arg(&args_, a.c_str()); }
  fuse_args* get() { return &args_; }

 private:
  fuse_args args_ = FUSE_ARGS_INIT(0, nullptr);
};

// fsname shows in /proc/mounts and df; libfuse splits -o values at commas.
std::string option_safe(std::string s) {
  for (char& c : s)
    if (c == ',' || c == '\\') c = '_';
  return s;
}

}  // namespace

Status run_fuse(fs::FileSystem& fs, const std::string& device, const std::string& mountpoint,
                const FuseOptions& opts, const std::function<void()>& on_ready) {
  Mounted m(fs, opts);
  m.uid = getuid();
  m.gid = getgid();
  std::string o = fmt::format("fsname=sluice:{},subtype=sluice", option_safe(device));
  o += opts.read_only ? ",ro" : ",rw";
  if (opts.allow_other) o += ",allow_other";
  Args args;
  args.add("-o");
  args.add(o);
  ::fuse* f = fuse_new(args.get(), &operations(), sizeof(fuse_operations), &m);
  if (f == nullptr) return Status(Errc::invalid_argument, fmt::format("{}: libfuse refused the options ({})", mountpoint, o));
  if (fuse_mount(f, mountpoint.c_str()) != 0) {
    fuse_destroy(f);
    return Status(Errc::io_error, fmt::format("{}: cannot mount there (see libfuse's message above; is it an empty "
                                              "directory, and is /dev/fuse usable?)", mountpoint));
  }
  fuse_session* se = fuse_get_session(f);
  Status st;
  if (fuse_set_signal_handlers(se) != 0) {
    st = Status(Errc::io_error, "cannot install signal handlers");
  } else {
    if (on_ready) on_ready();
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    fuse_loop_cfg_set_max_threads(cfg, std::max(1u, opts.threads));
    fuse_loop_cfg_set_idle_threads(cfg, std::max(1u, opts.threads));  // keep their channels
    const int rc = fuse_loop_mt(f, cfg);
    fuse_loop_cfg_destroy(cfg);
    // rc > 0: the signal that ended the loop; < 0: an error of the session itself.
    if (rc < 0) st = Status(Errc::io_error, fmt::format("{}: the FUSE session failed: {}", mountpoint, strerror(-rc)));
    fuse_remove_signal_handlers(se);
  }
  fuse_unmount(f);
  fuse_destroy(f);
  if (size_t left = m.close_all(); left > 0) log::info("sluice mount: closed {} file(s) left open", left);
  return st;
}

}  // namespace sluice::fuse
