// A test-only iSCSI target for conformance runs (iscsi_conformance_test.sh), on 127.0.0.1 at
// an ephemeral port: node IQN with LUN 0 over a malloc bdev of 512-byte blocks and LUN 1 over
// one of 4096-byte blocks, and node IQN-ro, read-only, with LUN 0 over a third. Prints
// "port N" once it accepts, then serves until SIGINT, SIGTERM or end of stdin (so that it
// cannot outlive the script that started it).
//
//   iscsi_test_target [IQN] [SIZE]      (defaults: iqn.2026-12.io.sluice:conformance, 64M)
//
// Until the iSCSI target has a control path in `sluice serve`, this is how a real initiator
// reaches it.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "bdev/bdev.h"
#include "target/iscsi/iscsi.h"
#include "thread/thread.h"

using namespace sluice;

namespace {

// Blocks until a termination signal arrives or stdin reaches its end.
void wait_for_end() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  const int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  pollfd fds[2] = {{.fd = sfd, .events = POLLIN, .revents = 0}, {.fd = STDIN_FILENO, .events = POLLIN, .revents = 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[0].revents != 0) break;
    if (fds[1].revents != 0) {
      char buf[256];
      if (read(STDIN_FILENO, buf, sizeof(buf)) <= 0) break;
    }
  }
  close(sfd);
}

int fail(const char* what, const Status& st) {
  std::fprintf(stderr, "iscsi_test_target: %s: %s\n", what, st.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string iqn = argc > 1 ? argv[1] : "iqn.2026-12.io.sluice:conformance";
  const std::string size = argc > 2 ? argv[2] : "64M";
  // Before any thread exists, so that only the signalfd sees these.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  thread::AppOptions opts;
  opts.cores = "0,1";  // pinning failures only warn
  opts.shutdown_timeout = std::chrono::milliseconds(5000);
  thread::App app(opts);
  if (Status st = app.start(); !st.ok()) return fail("app start", st);
  int rc = 0;
  {
    const char* const names[] = {"iscsi_conf0", "iscsi_conf1", "iscsi_conf_ro"};
    const char* const block_sizes[] = {"512", "4096", "512"};
    for (int k = 0; k < 3; ++k)
      if (auto made = bdev::create("malloc:" + size + "?bs=" + block_sizes[k], names[k]); !made.ok())
        return fail("malloc bdev", made.status());
    iscsi::TargetConfig cfg;
    cfg.portal_group = {.tag = 1, .portals = {net::ListenAddress::tcp_address("127.0.0.1", 0)}};
    cfg.nodes.push_back({.name = iqn, .alias = "sluice conformance", .luns = {{0, names[0]}, {1, names[1]}}});
    cfg.nodes.push_back({.name = iqn + "-ro", .alias = "sluice read-only", .luns = {{0, names[2]}}, .read_only = true});
    auto target = iscsi::Target::start(std::move(cfg));
    if (!target.ok()) return fail("target start", target.status());
    std::printf("port %u\n", unsigned(target.value()->addresses().at(0).port));
    std::fflush(stdout);
    wait_for_end();
    if (Status st = target.value()->stop(); !st.ok()) rc = fail("target stop", st);
    target.value().reset();
    for (const char* name : names)
      if (Status st = bdev::unregister(name); !st.ok()) rc = fail("bdev unregister", st);
  }
  if (Status st = app.shutdown(); !st.ok()) rc = fail("app shutdown", st);
  return rc;
}
