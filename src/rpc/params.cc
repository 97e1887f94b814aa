// Strict parameter reading: SPDK's decoders refuse unknown members too, which turns a typo
// into an error instead of a silently ignored option.
#include <algorithm>

#include <fmt/format.h>

#include "rpc/rpc.h"

namespace sluice::rpc {
namespace {

const Json& empty_object() {
  static const Json* empty = new Json(Json::object());
  return *empty;
}

[[noreturn]] void bad(std::string message) { throw Error{kInvalidParams, std::move(message)}; }

}  // namespace

Error error_from(const Status& status) {
  switch (status.code()) {
    case Errc::invalid_argument:
    case Errc::out_of_range:
      return {kInvalidParams, status.message()};
    case Errc::not_found:
      return {-19, status.message()};  // -ENODEV, as SPDK answers for a missing bdev
    case Errc::exists:
      return {-17, status.message()};  // -EEXIST
    case Errc::busy:
      return {-16, status.message()};  // -EBUSY
    default:
      return {kInternalError, status.message()};
  }
}

void throw_if_error(const Status& status) {
  if (!status.ok()) throw error_from(status);
}

Params::Params(const Json& params) : params_(params.is_null() ? empty_object() : params) {
  if (!params_.is_object()) bad("params must be an object");
}

const Json* Params::find(std::string_view key, Json::value_t type, std::string_view type_name) const {
  auto it = params_.find(key);
  if (it == params_.end()) return nullptr;
  used_.emplace_back(key);
  // A parsed non-negative number is number_unsigned, one built in C++ number_integer.
  const bool ok = type == Json::value_t::number_unsigned
                      ? it->is_number_unsigned() || (it->is_number_integer() && it->get<int64_t>() >= 0)
                      : it->type() == type;
  if (!ok) bad(fmt::format("'{}' must be {}", key, type_name));
  return &*it;
}

std::string Params::str(std::string_view key) const {
  const Json* v = find(key, Json::value_t::string, "a string");
  if (v == nullptr) bad(fmt::format("missing '{}'", key));
  return v->get<std::string>();
}

std::string Params::str(std::string_view key, std::string fallback) const {
  const Json* v = find(key, Json::value_t::string, "a string");
  return v == nullptr ? fallback : v->get<std::string>();
}

uint64_t Params::u64(std::string_view key) const {
  const Json* v = find(key, Json::value_t::number_unsigned, "a non-negative integer");
  if (v == nullptr) bad(fmt::format("missing '{}'", key));
  return v->get<uint64_t>();
}

uint64_t Params::u64(std::string_view key, uint64_t fallback) const {
  const Json* v = find(key, Json::value_t::number_unsigned, "a non-negative integer");
  return v == nullptr ? fallback : v->get<uint64_t>();
}

bool Params::flag(std::string_view key, bool fallback) const {
  const Json* v = find(key, Json::value_t::boolean, "true or false");
  return v == nullptr ? fallback : v->get<bool>();
}

const Json* Params::raw(std::string_view key) const {
  auto it = params_.find(key);
  if (it == params_.end()) return nullptr;
  used_.emplace_back(key);
  return &*it;
}

void Params::done() const {
  for (auto it = params_.begin(); it != params_.end(); ++it)
    if (std::find(used_.begin(), used_.end(), it.key()) == used_.end())
      bad(fmt::format("unknown parameter '{}'", it.key()));
}

}  // namespace sluice::rpc
