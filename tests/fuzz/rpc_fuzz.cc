// Fuzz target: the JSON-RPC server's input path (src/rpc): the stream splitter, the
// dispatcher with strict parameter reading, and config loading.
//
// Input: byte 0 sets the size of the chunks the rest is fed in (1-256 bytes, as a socket
// might deliver it). Every frame is dispatched to a registry holding the daemon's framework
// methods and a method that reads every kind of parameter. Promises checked:
//   - every answer is a JSON-RPC 2.0 response object with exactly one of result / error,
//     and an error carries an integer code and a string message;
//   - every answer serializes (invalid UTF-8 replaced, never an exception);
//   - the splitter never returns a frame longer than its limit, and after too_large or
//     garbage the harness stops, as the server closes the connection;
//   - loading any parsed frame as a config fails cleanly or succeeds, never throws.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "daemon/daemon.h"
#include "rpc/rpc.h"

namespace sluice::fuzz {
namespace {

using rpc::Json;

constexpr size_t kMaxFrame = 4096;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "rpc_fuzz: BROKEN PROMISE: %s\n", what);
  std::abort();
}

rpc::Registry& registry() {
  static rpc::Registry* r = [] {
    auto* reg = new rpc::Registry();
    daemon::framework_module({0}).add_methods(*reg);
    (void)reg->add("probe", [](const rpc::Params& p) {
      Json out{{"s", p.str("s", "")}, {"n", p.u64("n", 0)}, {"f", p.flag("f", false)}};
      if (const Json* raw = p.raw("any")) out["any"] = *raw;
      if (p.flag("strict", false)) p.done();
      return out;
    });
    (void)reg->add("must", [](const rpc::Params& p) {
      const std::string s = p.str("s");
      const uint64_t n = p.u64("n");
      p.done();
      return Json{{"s", s}, {"n", n}};
    });
    return reg;
  }();
  return *r;
}

void check_response(const Json& response) {
  if (response.is_null()) return;  // a notification
  if (!response.is_object()) broken("response is not an object");
  if (response.value("jsonrpc", "") != "2.0") broken("response lacks jsonrpc 2.0");
  const bool has_result = response.contains("result"), has_error = response.contains("error");
  if (has_result == has_error) broken("response has both or neither of result and error");
  if (has_error) {
    const Json& e = response["error"];
    if (!e.is_object() || !e.contains("code") || !e["code"].is_number_integer() || !e.contains("message") ||
        !e["message"].is_string())
      broken("error is not {code: int, message: string}");
  }
  (void)response.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice::fuzz;
  if (size == 0) return 0;
  const size_t chunk = static_cast<size_t>(data[0]) + 1;
  sluice::rpc::FrameSplitter splitter(kMaxFrame);
  std::string frame;
  for (size_t at = 1; at < size; at += chunk) {
    splitter.feed({reinterpret_cast<const char*>(data) + at, std::min(chunk, size - at)});
    for (;;) {
      const auto next = splitter.next(frame);
      if (next == sluice::rpc::FrameSplitter::Next::need_more) break;
      if (next != sluice::rpc::FrameSplitter::Next::frame) return 0;  // the server closes here
      if (frame.size() > kMaxFrame) broken("frame longer than the limit");
      check_response(registry().dispatch_text(frame));
      Json parsed = Json::parse(frame, nullptr, false);
      if (!parsed.is_discarded()) (void)registry().load_config(parsed);
    }
  }
  return 0;
}
