// The method table and JSON-RPC 2.0 request handling.
#include <fmt/format.h>

#include "rpc/rpc.h"

namespace sluice::rpc {
namespace {

Json error_response(const Json& id, int code, std::string_view message) {
  return Json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

}  // namespace

Status Registry::add(std::string name, Handler handler) {
  if (find(name) != nullptr) return {Errc::exists, fmt::format("RPC method {} registered twice", name)};
  methods_.push_back({std::move(name), std::move(handler)});
  return {};
}

void Registry::add_subsystem(std::string name, ConfigWriter writer) {
  subsystems_.push_back({std::move(name), std::move(writer)});
}

const Registry::Method* Registry::find(std::string_view name) const {
  for (const Method& m : methods_)
    if (m.name == name) return &m;
  return nullptr;
}

std::vector<std::string> Registry::methods() const {
  std::vector<std::string> out;
  for (const Method& m : methods_) out.push_back(m.name);
  return out;
}

Json Registry::dispatch(const Json& request) const {
  // The id is echoed only when it is one JSON-RPC allows (string, number or null).
  if (!request.is_object())
    return error_response(nullptr, kInvalidRequest,
                          request.is_array() ? "batch requests are not supported" : "a request must be a JSON object");
  Json id = nullptr;
  auto id_it = request.find("id");
  const bool notification = id_it == request.end();
  if (!notification) {
    if (!id_it->is_string() && !id_it->is_number() && !id_it->is_null())
      return error_response(nullptr, kInvalidRequest, "\"id\" must be a string, a number or null");
    id = *id_it;
  }
  auto version = request.find("jsonrpc");
  if (version == request.end() || *version != "2.0")
    return error_response(id, kInvalidRequest, "\"jsonrpc\" must be \"2.0\"");
  auto method_it = request.find("method");
  if (method_it == request.end() || !method_it->is_string())
    return error_response(id, kInvalidRequest, "\"method\" must be a string");
  const std::string& name = method_it->get_ref<const std::string&>();
  const Method* m = find(name);
  if (m == nullptr) return error_response(id, kMethodNotFound, fmt::format("Method not found: {}", name));

  auto params_it = request.find("params");
  const Json params = params_it == request.end() ? Json(nullptr) : *params_it;
  Json response;
  try {
    Params p(params);
    Json result = m->handler(p);
    response = Json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
  } catch (const Error& e) {
    response = error_response(id, e.code, e.message);
  } catch (const Json::exception& e) {
    response = error_response(id, kInvalidParams, e.what());
  } catch (const std::exception& e) {
    response = error_response(id, kInternalError, e.what());
  }
  return notification ? Json(nullptr) : response;
}

Json Registry::dispatch_text(std::string_view text) const {
  Json request = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) return error_response(nullptr, kParseError, "Parse error: the request is not valid JSON");
  return dispatch(request);
}

Json Registry::save_config() const {
  Json subsystems = Json::array();
  for (const Subsystem& s : subsystems_) subsystems.push_back({{"subsystem", s.name}, {"config", s.writer()}});
  return Json{{"subsystems", std::move(subsystems)}};
}

Status Registry::load_config(const Json& config) const {
  auto subs = config.is_object() ? config.find("subsystems") : config.end();
  if (!config.is_object() || subs == config.end() || !subs->is_array())
    return {Errc::invalid_argument, "config: expected {\"subsystems\": [...]}"};
  for (const Json& sub : *subs) {
    if (!sub.is_object() || !sub.contains("subsystem") || !sub["subsystem"].is_string())
      return {Errc::invalid_argument, "config: every subsystem needs a \"subsystem\" name"};
    const std::string name = sub["subsystem"];
    auto entries = sub.find("config");
    if (entries == sub.end() || entries->is_null()) continue;  // spdk_tgt writes null for an empty one
    if (!entries->is_array()) return {Errc::invalid_argument, fmt::format("config: subsystem {}: \"config\" must be an array", name)};
    size_t index = 0;
    for (const Json& entry : *entries) {
      ++index;
      if (!entry.is_object() || !entry.contains("method") || !entry["method"].is_string())
        return {Errc::invalid_argument, fmt::format("config: subsystem {}, entry {}: needs a \"method\"", name, index)};
      Json request{{"jsonrpc", "2.0"}, {"id", index}, {"method", entry["method"]}};
      if (entry.contains("params")) request["params"] = entry["params"];
      Json response = dispatch(request);
      if (response.contains("error")) {
        const Json& e = response["error"];
        return {Errc::invalid_argument, fmt::format("config: subsystem {}, entry {} ({}): {} (code {})", name, index,
                                                    entry["method"].get<std::string>(),
                                                    e["message"].get<std::string>(), e["code"].get<int>())};
      }
    }
  }
  return {};
}

}  // namespace sluice::rpc
