// A small NBD server for the client tests (nbd_clients_test.sh), until the daemon serves NBD:
// a malloc bdev exported as "disk" (and read-only as "disk-ro") on a Unix socket.
//   nbd_test_server SOCKET_PATH SIZE
// Prints "ready" once it listens; exits 0 on SIGTERM or SIGINT after a clean stop.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <string>

#include "base/log.h"
#include "bdev/bdev.h"
#include "target/nbd/nbd.h"
#include "thread/thread.h"

using namespace sluice;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SOCKET_PATH SIZE\n", argv[0]);
    return 2;
  }
  // Blocked before any thread starts, so only sigwait below takes them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  thread::AppOptions o;
  o.cores = "0,1";
  thread::App app(o);
  Status st = app.start();
  auto fail = [&](const Status& s) {
    std::fprintf(stderr, "nbd_test_server: %s\n", s.to_string().c_str());
    (void)app.shutdown();
    return 1;
  };
  if (!st.ok()) return fail(st);
  auto name = bdev::create(std::string("malloc:") + argv[2], "nbddisk");
  if (!name.ok()) return fail(name.status());
  if (!(st = nbd::export_add("disk", *name, false)).ok()) return fail(st);
  if (!(st = nbd::export_add("disk-ro", *name, true)).ok()) return fail(st);
  if (!(st = nbd::start_server(net::ListenAddress::unix_socket(argv[1]))).ok()) return fail(st);
  std::printf("ready\n");
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  Status stopped = nbd::stop_server();
  for (auto& e : nbd::exports()) (void)nbd::export_remove(e.name);
  (void)bdev::unregister(*name);
  Status down = app.shutdown();
  if (!stopped.ok()) return fail(stopped);
  if (!down.ok()) {
    std::fprintf(stderr, "nbd_test_server: shutdown: %s\n", down.to_string().c_str());
    return 1;
  }
  return 0;
}
