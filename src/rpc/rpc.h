// JSON-RPC 2.0 for the serving daemon: a method registry, the dispatcher, SPDK's stream
// framing, a Unix-socket server, and the JSON config (loading = calling methods in order;
// save_config = the calls that recreate the running state). docs/rpc.md lists the methods.
//
// Method names and parameter names follow SPDK wherever SPDK has the method, so that SPDK's
// rpc.py and spdk_tgt config files work against Sluice for the methods it has.
//
// Handlers run on the server's own thread, one request at a time: the control path. A
// handler may block briefly (opening a file, waiting for a reactor to answer a message);
// running it on a reactor would stall that reactor's I/O instead.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace sluice::rpc {

using Json = nlohmann::json;

// JSON-RPC 2.0 error codes.
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;

// What a handler throws to answer with an error; anything else it throws becomes
// kInternalError with the exception's text.
struct Error {
  int code = kInternalError;
  std::string message;
};
// The error for a failed Status: invalid_argument and out_of_range are bad parameters,
// not_found is -ENODEV as SPDK reports a missing bdev, anything else an internal error.
Error error_from(const Status& status);
// Throws error_from(status) when the status failed.
void throw_if_error(const Status& status);

// The parameters of one call, read strictly: a missing required member, a member of the
// wrong type, and a member no accessor asked for (a typo such as "num_block") are
// kInvalidParams errors naming the member.
class Params {
 public:
  explicit Params(const Json& params);  // null, or an object (anything else: an error)
  std::string str(std::string_view key) const;
  std::string str(std::string_view key, std::string fallback) const;
  uint64_t u64(std::string_view key) const;
  uint64_t u64(std::string_view key, uint64_t fallback) const;
  bool flag(std::string_view key, bool fallback) const;
  const Json* raw(std::string_view key) const;  // nullptr when absent; marks it used
  // Call after reading: throws for every member that nothing asked for.
  void done() const;

 private:
  const Json* find(std::string_view key, Json::value_t type, std::string_view type_name) const;
  const Json& params_;
  mutable std::vector<std::string> used_;
};

using Handler = std::function<Json(const Params& params)>;

// Writes the calls that recreate one subsystem's running state, as {"method", "params"}
// objects in the order they must run.
using ConfigWriter = std::function<Json()>;

class Registry {
 public:
  // Registers `name`. A name registered twice is a programming error (Errc::exists).
  Status add(std::string name, Handler handler);
  // Adds a subsystem to save_config's output; subsystems load in registration order.
  void add_subsystem(std::string name, ConfigWriter writer);

  // Runs one JSON-RPC request object and returns its response, or null for a notification
  // (a request without "id"). Never throws.
  Json dispatch(const Json& request) const;
  // Runs a whole request text (one JSON value): a parse error is answered as JSON-RPC
  // says (id null).
  Json dispatch_text(std::string_view text) const;

  std::vector<std::string> methods() const;
  // {"subsystems": [{"subsystem": NAME, "config": [...]}, ...]}
  Json save_config() const;
  // Calls every method of every subsystem in order. Stops at the first failure, naming
  // the subsystem, the entry's position and method, and what went wrong.
  Status load_config(const Json& config) const;

 private:
  struct Method {
    std::string name;
    Handler handler;
  };
  struct Subsystem {
    std::string name;
    ConfigWriter writer;
  };
  const Method* find(std::string_view name) const;
  std::vector<Method> methods_;
  std::vector<Subsystem> subsystems_;
};

// SPDK frames JSON-RPC on a stream socket as JSON values back to back, with nothing
// between them but optional whitespace. The splitter finds where each value ends without
// parsing it; the dispatcher then parses it once.
class FrameSplitter {
 public:
  explicit FrameSplitter(size_t max_frame) : max_frame_(max_frame) {}
  // Appends received bytes.
  void feed(std::string_view bytes) { buffer_.append(bytes); }
  enum class Next : uint8_t { frame, need_more, too_large, garbage };
  // The next whole value in `frame`, or why there is none: a value longer than max_frame,
  // or bytes that cannot start a JSON object or array (a stream cannot resynchronize after
  // either, so the connection should answer and close).
  Next next(std::string& frame);

 private:
  std::string buffer_;
  size_t scanned_ = 0;  // bytes of buffer_ already scanned for the current value
  int depth_ = 0;
  bool in_string_ = false, escaped_ = false, started_ = false;
  size_t max_frame_;
};

struct ServerOptions {
  std::string socket_path = "/var/tmp/sluice.sock";
  uint32_t max_connections = 64;
  size_t max_request_bytes = 4u << 20;
};

// A Unix-socket JSON-RPC server on a thread of its own. The socket is created with mode
// 0600 (only its owner may manage the daemon); a stale socket file left by a dead daemon is
// replaced, a live one (something accepts on it) is refused.
class Server {
 public:
  Server(const Registry& registry, ServerOptions options);
  ~Server();  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status start();
  // Stops accepting, closes every connection and joins the thread (the request running,
  // if any, finishes first). Removes the socket file.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A blocking client for tools and tests: one request, one response.
Result<Json> call(const std::string& socket_path, std::string_view method, const Json& params,
                  int timeout_ms = 30000);

}  // namespace sluice::rpc
