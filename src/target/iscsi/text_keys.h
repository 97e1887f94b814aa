// The key=value text of Login and Text PDUs (RFC 7143 sections 6.1 and 6.2): every pair is
// "key=value" followed by a NUL; a text longer than one PDU continues in the next with the C
// bit set. Parsing is strict: a pair without '=', a bad key name, a value over its limit, a
// repeated key or a text not ending in NUL are errors (Errc::invalid_argument, the message
// says which pair).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sluice::iscsi {

inline constexpr size_t kMaxKeyName = 63;
inline constexpr size_t kMaxValue = 255;
// The few keys RFC 7143 lets carry long values (CHAP and SRP binaries).
inline constexpr size_t kMaxLongValue = 8192;
// What an accumulator holds by default: RFC 7143 6.1 asks every end to take at least 8192
// bytes of key=value data in one sequence; a little more leaves room for long CHAP values.
inline constexpr size_t kDefaultTextLimit = 64 * 1024;

struct KeyValue {
  std::string key;
  std::string value;
  bool operator==(const KeyValue&) const = default;
};

// A key name RFC 7143 allows: 1..63 characters, a capital letter first, then letters, digits
// and . - + @ _ ("X#" for IANA-registered private keys).
Status check_key_name(std::string_view key);
// The longest value `key` may have.
size_t max_value_length(std::string_view key);

// Parses a whole text (every PDU of a C-bit sequence joined).
Result<std::vector<KeyValue>> parse_text(std::span<const uint8_t> text);
Result<std::vector<KeyValue>> parse_text(std::string_view text);

// The value of `key`, or null.
const KeyValue* find_key(const std::vector<KeyValue>& keys, std::string_view key);

// Joins the data segments of a C-bit sequence, up to `limit` bytes in all.
class TextAccumulator {
 public:
  explicit TextAccumulator(size_t limit = kDefaultTextLimit) : limit_(limit) {}

  // One PDU's data segment; `more` is its C bit. An error (and nothing kept) past the limit
  // or after the sequence is complete.
  Status add(std::span<const uint8_t> data, bool more);
  // A PDU with C clear came in: take() the text.
  bool complete() const { return complete_; }
  // The parsed text of a complete sequence; the accumulator starts over.
  Result<std::vector<KeyValue>> take();
  void reset();
  size_t size() const { return text_.size(); }

 private:
  size_t limit_;
  std::string text_;
  bool complete_ = false;
};

// Appends "key=value\0".
void append_key(std::string& out, std::string_view key, std::string_view value);

// The next data segment of at most `max_segment` bytes of `text` from `offset` (a response
// text split over PDUs); more text remains (set C) if offset + result.size() < text.size().
std::string_view text_chunk(std::string_view text, size_t offset, size_t max_segment);

}  // namespace sluice::iscsi
