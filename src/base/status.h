// Status and Result: how every Sluice layer reports failure.
//
// The hot path carries only an Errc (one byte); a Status adds a human message for the
// control path, where a clear explanation matters more than a few nanoseconds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sluice {

enum class Errc : uint8_t {
  ok = 0,
  invalid_argument,  // the caller asked for something malformed
  out_of_range,      // an LBA, offset or length beyond the device or object
  not_supported,     // the device or object does not implement the operation
  not_found,         // a named thing does not exist
  exists,            // a named thing already exists
  busy,              // resources (queue slots, claims) are taken; retry later
  io_error,          // the device failed the operation
  no_space,          // the device or store is full
  corrupt,           // on-disk data failed validation
  aborted,           // cancelled by reset, shutdown or power cut
  permission,        // the OS refused access
  not_a_directory,   // a path component or a directory operand is a file
  is_a_directory,    // a file operation named a directory
  not_empty,         // a directory to remove or replace still has entries
  name_too_long,     // a name beyond the format's limit
  wrong_format,      // the device or object holds something other than the format asked for
};

std::string_view errc_name(Errc code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Errc code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == Errc::ok; }
  Errc code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: buffer 0x... is not aligned to 512 bytes"
  std::string to_string() const;

 private:
  Errc code_ = Errc::ok;
  std::string message_;
};

// Builds a Status from errno, naming what failed: "open /x: No such file or directory".
Status errno_status(int err, std::string_view what);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }
  Status status() const { return ok() ? Status::Ok() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sluice

// Propagates a failed Status to the caller.
#define SLUICE_RETURN_IF_ERROR(expr)          \
  do {                                        \
    ::sluice::Status _st = (expr);            \
    if (!_st.ok()) return _st;                \
  } while (0)
