// Parsing and building the key=value text (text_keys.h).
#include "target/iscsi/text_keys.h"

#include <algorithm>

namespace sluice::iscsi {
namespace {

Status bad(std::string message) { return {Errc::invalid_argument, std::move(message)}; }

bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_key_char(char c) {
  return is_upper(c) || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' ||
         c == '@' || c == '_';
}

// Shows a key from untrusted bytes in an error message: printable, and not too long.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 80) out += "...";
  return out;
}

}  // namespace

Status check_key_name(std::string_view key) {
  if (key.empty()) return bad("empty key name");
  if (key.size() > kMaxKeyName)
    return bad("key name '" + shown(key) + "' is " + std::to_string(key.size()) + " bytes, over 63");
  if (!is_upper(key[0])) return bad("key name '" + shown(key) + "' does not start with a capital letter");
  for (size_t i = 1; i < key.size(); ++i) {
    if (is_key_char(key[i]) || (i == 1 && key[0] == 'X' && key[i] == '#')) continue;
    return bad("key name '" + shown(key) + "' has a character not allowed in key names");
  }
  return {};
}

size_t max_value_length(std::string_view key) {
  static constexpr std::string_view kLong[] = {"CHAP_C", "CHAP_R", "SRP_A", "SRP_B", "SRP_M", "SRP_HM", "SRP_s"};
  return std::find(std::begin(kLong), std::end(kLong), key) != std::end(kLong) ? kMaxLongValue : kMaxValue;
}

Result<std::vector<KeyValue>> parse_text(std::string_view text) {
  std::vector<KeyValue> out;
  if (!text.empty() && text.back() != '\0') return bad("text does not end with a NUL");
  while (!text.empty()) {
    const size_t end = text.find('\0');
    const std::string_view pair = text.substr(0, end);
    text.remove_prefix(end + 1);
    if (pair.empty()) continue;  // stray NULs (padding some initiators leave) carry nothing
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return bad("'" + shown(pair) + "' has no '='");
    const std::string_view key = pair.substr(0, eq), value = pair.substr(eq + 1);
    SLUICE_RETURN_IF_ERROR(check_key_name(key));
    if (value.size() > max_value_length(key))
      return bad("value of " + std::string(key) + " is " + std::to_string(value.size()) + " bytes, over " +
                 std::to_string(max_value_length(key)));
    if (find_key(out, key) != nullptr) return bad("key " + std::string(key) + " appears twice");
    out.push_back({std::string(key), std::string(value)});
  }
  return out;
}

Result<std::vector<KeyValue>> parse_text(std::span<const uint8_t> text) {
  return parse_text(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
}

const KeyValue* find_key(const std::vector<KeyValue>& keys, std::string_view key) {
  for (const KeyValue& kv : keys)
    if (kv.key == key) return &kv;
  return nullptr;
}

Status TextAccumulator::add(std::span<const uint8_t> data, bool more) {
  if (complete_) return bad("text continues after its last PDU (C clear)");
  if (data.size() > limit_ - text_.size()) {
    const size_t total = text_.size() + data.size();
    reset();
    return bad("text of " + std::to_string(total) + " bytes so far, over the limit of " + std::to_string(limit_));
  }
  text_.append(reinterpret_cast<const char*>(data.data()), data.size());
  complete_ = !more;
  return {};
}

Result<std::vector<KeyValue>> TextAccumulator::take() {
  if (!complete_) return bad("text is not complete: its last PDU had C set");
  auto r = parse_text(std::string_view(text_));
  reset();
  return r;
}

void TextAccumulator::reset() {
  text_.clear();
  complete_ = false;
}

void append_key(std::string& out, std::string_view key, std::string_view value) {
  out.append(key);
  out += '=';
  out.append(value);
  out += '\0';
}

std::string_view text_chunk(std::string_view text, size_t offset, size_t max_segment) {
  if (offset >= text.size()) return {};
  return text.substr(offset, max_segment);
}

}  // namespace sluice::iscsi
