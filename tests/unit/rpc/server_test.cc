// The RPC server over a real Unix socket: framing, bad clients, many clients.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "rpc/rpc.h"
#include "rpc/unix_socket.h"
#include "temp_dir.h"

namespace sluice::rpc {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    ASSERT_TRUE(registry_.add("add", [](const Params& p) {
                           const uint64_t a = p.u64("a"), b = p.u64("b");
                           p.done();
                           return Json(a + b);
                         }).ok());
    server_ = std::make_unique<Server>(registry_, ServerOptions{.socket_path = path(), .max_request_bytes = 4096});
    ASSERT_TRUE(server_->start().ok());
  }
  std::string path() const { return dir_.file("rpc.sock"); }

  // Sends raw bytes on a new connection and reads until the server closes or `responses`
  // values arrived.
  std::vector<Json> exchange(const std::string& bytes, size_t responses, bool shut_write = false) {
    auto fd = connect_unix(path());
    EXPECT_TRUE(fd.ok());
    if (!fd.ok()) return {};
    EXPECT_EQ(::send(*fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    if (shut_write) ::shutdown(*fd, SHUT_WR);
    timeval tv{10, 0};
    setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    FrameSplitter split(1 << 20);
    std::vector<Json> out;
    std::string frame;
    while (out.size() < responses) {
      if (split.next(frame) == FrameSplitter::Next::frame) {
        out.push_back(Json::parse(frame));
        continue;
      }
      char buf[4096];
      const ssize_t n = ::recv(*fd, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;  // a signal another part of the process uses
      if (n <= 0) break;
      split.feed({buf, static_cast<size_t>(n)});
    }
    ::close(*fd);
    return out;
  }

  testing::TempDir dir_;
  Registry registry_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, CallRoundTripAndSocketMode) {
  auto r = call(path(), "add", Json{{"a", 2}, {"b", 40}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)["result"], 42);
  struct stat st{};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ServerTest, PipelinedRequestsAnsweredInOrder) {
  std::string bytes;
  for (int i = 0; i < 20; ++i)
    bytes += Json{{"jsonrpc", "2.0"}, {"id", i}, {"method", "add"}, {"params", {{"a", i}, {"b", 1}}}}.dump() + "\n";
  auto out = exchange(bytes, 20, /*shut_write=*/true);
  ASSERT_EQ(out.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(out[i]["id"], i);
    EXPECT_EQ(out[i]["result"], i + 1);
  }
}

TEST_F(ServerTest, GarbageAndHugeRequestsCloseOnlyThatConnection) {
  auto garbage = exchange("hello there", 2);
  ASSERT_EQ(garbage.size(), 1u);  // one error, then the server closed
  EXPECT_EQ(garbage[0]["error"]["code"], kParseError);

  auto huge = exchange("{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":{\"x\":\"" + std::string(8192, 'a'), 2);
  ASSERT_EQ(huge.size(), 1u);
  EXPECT_EQ(huge[0]["error"]["code"], kInvalidRequest);

  auto bad_json = exchange("{\"jsonrpc\":\"2.0\",,}", 1);
  ASSERT_EQ(bad_json.size(), 1u);
  EXPECT_EQ(bad_json[0]["error"]["code"], kParseError);

  // A client that sends half a request and vanishes.
  auto fd = connect_unix(path());
  ASSERT_TRUE(fd.ok());
  ASSERT_GT(::send(*fd, "{\"jsonrpc\":", 11, MSG_NOSIGNAL), 0);
  ::close(*fd);

  auto r = call(path(), "add", Json{{"a", 1}, {"b", 1}});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)["result"], 2);
}

TEST_F(ServerTest, FiftyClientsAtOnce) {
  std::vector<std::thread> clients;
  std::atomic<int> right{0};
  for (int i = 0; i < 50; ++i)
    clients.emplace_back([&, i] {
      auto r = call(path(), "add", Json{{"a", i}, {"b", 1000}});
      if (r.ok() && (*r)["result"] == i + 1000) right.fetch_add(1);
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(right.load(), 50);
}

TEST_F(ServerTest, ALiveSocketIsRefusedAStaleOneReplaced) {
  Server second(registry_, ServerOptions{.socket_path = path()});
  Status st = second.start();
  EXPECT_EQ(st.code(), Errc::busy) << st.to_string();

  server_->stop();
  EXPECT_FALSE(call(path(), "add", Json{{"a", 1}, {"b", 1}}).ok());
  // A dead server's socket file: bound once, never removed.
  {
    auto fd = listen_unix(path(), 1);
    ASSERT_TRUE(fd.ok());
    ::close(*fd);
  }
  Server third(registry_, ServerOptions{.socket_path = path()});
  ASSERT_TRUE(third.start().ok());
  auto r = call(path(), "add", Json{{"a", 3}, {"b", 4}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["result"], 7);
}

TEST(UnixSocket, RefusesAPathThatIsNotASocketOrTooLong) {
  testing::TempDir dir;
  const std::string file = dir.file("plain");
  { std::ofstream(file) << "x"; }
  Registry r;
  Server s(r, ServerOptions{.socket_path = file});
  EXPECT_EQ(s.start().code(), Errc::exists);
  Server long_path(r, ServerOptions{.socket_path = dir.file(std::string(200, 'a'))});
  EXPECT_EQ(long_path.start().code(), Errc::invalid_argument);
}

}  // namespace
}  // namespace sluice::rpc
