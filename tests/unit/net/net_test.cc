// The socket layer: a listener hands connections to reactors round-robin, connections echo
// bytes, a peer's hang-up is reported, and an idle connection lets its reactor sleep.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "net/net.h"
#include "temp_dir.h"
#include "thread/io_channel.h"
#include "thread/thread.h"
#include "wait.h"

namespace sluice::net {
namespace {

using namespace std::chrono_literals;
using sluice::testing::wait_until;

std::atomic<int> g_open{0};
std::atomic<int> g_closed_by_peer{0};
std::atomic<int> g_on_reactor[2];

// Echoes what it reads; frees itself when the peer goes. One SendItem at a time: while it
// is out, reading pauses (the back-pressure a real protocol applies).
class Echo final : public Connection::Handler {
 public:
  void start(int fd) {
    ++g_open;
    if (!conn_.open(fd, this).ok()) finish();
  }
  void on_readable() override {
    if (sending_) return;
    auto n = conn_.recv(buf_, sizeof(buf_));
    if (!n.ok() || *n == 0) return;
    sending_ = true;
    conn_.set_reading(false);
    item_.iov[0] = {buf_, *n};
    item_.iovcnt = 1;
    item_.arg = this;
    item_.done = [](void* arg, bool ok) {
      auto* e = static_cast<Echo*>(arg);
      e->sending_ = false;
      if (ok) e->conn_.set_reading(true);
    };
    conn_.send(&item_);
  }
  void on_closed() override {
    ++g_closed_by_peer;
    finish();
  }

 private:
  void finish() {
    conn_.close();
    --g_open;
    // Freed from a message: this may be deep inside the connection's own callback.
    (void)thread::send_message(thread::reactor_id(thread::current_reactor()), [this] { delete this; });
  }
  Connection conn_;
  SendItem item_;
  bool sending_ = false;
  char buf_[4096];
};

void accept_echo(int fd, std::string) {
  ++g_on_reactor[thread::reactor_id(thread::current_reactor())];
  (new Echo())->start(fd);
}

template <typename F>
auto on_reactor(uint32_t id, F f) {
  auto p = std::make_shared<std::promise<decltype(f())>>();
  auto fut = p->get_future();
  EXPECT_TRUE(thread::send_message(id, [p, f] { p->set_value(f()); }).ok());
  EXPECT_EQ(fut.wait_for(10s), std::future_status::ready);
  return fut.get();
}

int connect_to(const ListenAddress& a) {
  int fd;
  if (a.kind == ListenAddress::Kind::unix_path) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un s{};
    s.sun_family = AF_UNIX;
    std::strncpy(s.sun_path, a.path.c_str(), sizeof(s.sun_path) - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&s), sizeof(s)) != 0) {
      close(fd);
      return -1;
    }
  } else {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in s{};
    s.sin_family = AF_INET;
    s.sin_port = htons(a.port);
    inet_pton(AF_INET, a.host.c_str(), &s.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&s), sizeof(s)) != 0) {
      close(fd);
      return -1;
    }
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

std::string echo_round_trip(int fd, const std::string& msg) {
  if (send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) return "";
  std::string got;
  char b[4096];
  while (got.size() < msg.size()) {
    ssize_t n = recv(fd, b, sizeof(b), 0);
    if (n <= 0) break;
    got.append(b, static_cast<size_t>(n));
  }
  return got;
}

class NetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread::AppOptions o;
    o.cores = "0,1";
    o.shutdown_timeout = 5000ms;
    app_ = std::make_unique<thread::App>(o);
    ASSERT_TRUE(app_->start().ok());
    g_on_reactor[0] = g_on_reactor[1] = 0;
  }
  void TearDown() override {
    if (listener_) {
      auto* l = listener_.get();
      on_reactor(0, [l] {
        l->stop();
        return true;
      });
      listener_.reset();
    }
    EXPECT_TRUE(wait_until([] { return g_open.load() == 0; }));
    Status st = app_->shutdown();
    EXPECT_TRUE(st.ok()) << st.to_string();  // no net channel left behind
  }
  void listen(const ListenAddress& a) {
    auto l = Listener::bind(a);
    ASSERT_TRUE(l.ok()) << l.status().to_string();
    listener_ = std::move(l.value());
    auto* raw = listener_.get();
    ASSERT_TRUE(on_reactor(0, [raw] { return raw->start(accept_echo).ok(); }));
  }

  std::unique_ptr<thread::App> app_;
  std::unique_ptr<Listener> listener_;
  sluice::testing::TempDir dir_;
};

TEST_F(NetTest, TcpEchoRoundRobin) {
  listen(ListenAddress::tcp_address("127.0.0.1", 0));
  ASSERT_NE(listener_->bound().port, 0);
  int a = connect_to(listener_->bound());
  int b = connect_to(listener_->bound());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_EQ(echo_round_trip(a, "hello"), "hello");
  std::string big(200000, 'x');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  EXPECT_EQ(echo_round_trip(b, big), big);
  EXPECT_EQ(g_on_reactor[0].load(), 1);
  EXPECT_EQ(g_on_reactor[1].load(), 1);
  close(a);
  close(b);
  EXPECT_TRUE(wait_until([] { return g_closed_by_peer.load() >= 2 && g_open.load() == 0; }));
}

TEST_F(NetTest, UnixSocketModeAndStaleFile) {
  const std::string path = dir_.path() + "/s.sock";
  {
    auto l = Listener::bind(ListenAddress::unix_socket(path));
    ASSERT_TRUE(l.ok());
    // Destroyed unwatched: removes its file. Leave a stale socket file behind instead:
  }
  int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un s{};
  s.sun_family = AF_UNIX;
  std::strncpy(s.sun_path, path.c_str(), sizeof(s.sun_path) - 1);
  ASSERT_EQ(bind(stale, reinterpret_cast<sockaddr*>(&s), sizeof(s)), 0);
  close(stale);
  listen(ListenAddress::unix_socket(path, 0660));
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  int fd = connect_to(listener_->bound());
  ASSERT_GE(fd, 0);
  EXPECT_EQ(echo_round_trip(fd, "unix"), "unix");
  close(fd);

  // A regular file at the path is the user's: never replaced.
  const std::string file = dir_.path() + "/plain";
  std::ofstream(file) << "keep";
  auto refused = Listener::bind(ListenAddress::unix_socket(file));
  EXPECT_EQ(refused.status().code(), Errc::exists);
  EXPECT_FALSE(Listener::bind(ListenAddress::tcp_address("not-an-address", 0)).ok());
  EXPECT_FALSE(Listener::bind(ListenAddress::unix_socket(std::string(200, 'x'))).ok());
}

TEST_F(NetTest, Ipv6Loopback) {
  auto l = Listener::bind(ListenAddress::tcp_address("::1", 0));
  if (!l.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << l.status().to_string();
  EXPECT_EQ(l.value()->bound().to_string(), "[::1]:" + std::to_string(l.value()->bound().port));
  listener_ = std::move(l.value());
  auto* raw = listener_.get();
  ASSERT_TRUE(on_reactor(0, [raw] { return raw->start(accept_echo).ok(); }));
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  s.sin6_port = htons(listener_->bound().port);
  inet_pton(AF_INET6, "::1", &s.sin6_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&s), sizeof(s)), 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(echo_round_trip(fd, "six"), "six");
  close(fd);
}

TEST_F(NetTest, WatchRefusedOffReactor) {
  Watch w;
  w.fd = 0;
  EXPECT_EQ(watch(&w, 1).code(), Errc::invalid_argument);
}

// The point of the epoll channel: a reactor whose only work is an idle socket sleeps, and a
// byte on the socket wakes it.
TEST_F(NetTest, IdleConnectionLetsTheReactorSleep) {
  listen(ListenAddress::tcp_address("127.0.0.1", 0));
  int a = connect_to(listener_->bound());  // reactor 0
  int b = connect_to(listener_->bound());  // reactor 1
  ASSERT_GE(b, 0);
  const uint64_t slept = thread::reactor_stats(1)->sleeps;
  EXPECT_EQ(echo_round_trip(b, "x"), "x");
  // An idle connection is nothing in flight: the reactor sleeps after its idle grace (spent
  // spinning, in case the peer sends again soon), with the connection's socket armed to wake it.
  ASSERT_TRUE(wait_until([&] { return thread::reactor_stats(1)->sleeps > slept; }));
  std::this_thread::sleep_for(20ms);  // well past the 1 ms grace that follows the echo
  const auto before = *thread::reactor_stats(1);
  std::this_thread::sleep_for(300ms);
  const auto after = *thread::reactor_stats(1);
  const uint64_t sleeps = after.sleeps - before.sleeps;
  EXPECT_EQ(after.io_sleeps, before.io_sleeps);
  // A few loop rounds per sleep; a spinning reactor would go round millions of times.
  EXPECT_LE(after.iterations - before.iterations, 3 * sleeps + 8);
  EXPECT_EQ(echo_round_trip(b, "wake"), "wake");
  close(a);
  close(b);
}

// A watch that is not worth the idle grace (Watch::spin_for_peer false: a control socket)
// still wakes the reactor but does not keep it spinning; an ordinary one keeps the grace.
TEST(NetSpin, AQuietWatchLetsTheReactorSleepAtOnceAndAnOrdinaryOneKeepsTheGrace) {
  thread::AppOptions o;
  o.cores = "0";
  o.shutdown_timeout = 5000ms;
  o.idle_grace = std::chrono::hours(1);  // longer than any wait here: only the watch can cut it
  thread::App app(o);
  ASSERT_TRUE(app.start().ok());
  const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  static std::atomic<int> fired{0};
  Watch quiet, plain;
  quiet.fd = efd;
  quiet.spin_for_peer = false;
  quiet.arg = &quiet;
  quiet.fn = [](void* arg, uint32_t) {
    uint64_t count;
    (void)read(static_cast<Watch*>(arg)->fd, &count, sizeof count);  // level-triggered: quiet again
    ++fired;
  };
  const uint64_t grace_ns = 3'600'000'000'000ull;
  uint64_t spin_ns = 0;
  const uint64_t slept = thread::reactor_stats(0)->sleeps;
  ASSERT_TRUE(thread::call_and_wait(0, [&] {
    Status st = watch(&quiet, EPOLLIN);
    spin_ns = thread::thread_channels_idle(grace_ns).spin_ns;
    return st;
  }, 5000ms).ok());
  EXPECT_EQ(spin_ns, 0u);
  ASSERT_TRUE(wait_until([&] { return thread::reactor_stats(0)->sleeps > slept; }))
      << "the reactor spun for a watch that asked for no spinning";
  uint64_t one = 1;
  ASSERT_EQ(write(efd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  ASSERT_TRUE(wait_until([&] { return fired.load() > 0; })) << "a quiet watch must still wake the reactor";
  // A reactor kept busy (a poller that always has work) never sleeps: it must still look.
  thread::Poller* busy = nullptr;
  ASSERT_TRUE(thread::call_and_wait(0, [&] {
    auto p = thread::register_poller([] { return thread::PollStatus::busy; });
    if (p.ok()) busy = p.value();
    return p.status();
  }, 5000ms).ok());
  const int fired_before = fired.load();
  ASSERT_EQ(write(efd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  EXPECT_TRUE(wait_until([&] { return fired.load() > fired_before; })) << "a busy reactor never looked at a quiet watch";
  ASSERT_TRUE(thread::call_and_wait(0, [&] { return thread::unregister_poller(busy); }, 5000ms).ok());

  const int other = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(other, 0);
  plain.fd = other;
  plain.fn = [](void*, uint32_t) {};
  ASSERT_TRUE(thread::call_and_wait(0, [&] {
    Status st = watch(&plain, EPOLLIN);
    spin_ns = thread::thread_channels_idle(grace_ns).spin_ns;
    unwatch(&plain);
    unwatch(&quiet);
    return st;
  }, 5000ms).ok());
  EXPECT_EQ(spin_ns, grace_ns);
  EXPECT_TRUE(app.shutdown().ok());
  close(efd);
  close(other);
}

}  // namespace
}  // namespace sluice::net
