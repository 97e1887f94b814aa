// Finding where one JSON value ends in a byte stream without parsing it: count brackets
// outside strings. Only objects and arrays can be framed this way (a bare number has no
// end), and JSON-RPC requests are objects (or batch arrays).
#include "rpc/rpc.h"

namespace sluice::rpc {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

FrameSplitter::Next FrameSplitter::next(std::string& frame) {
  if (!started_) {  // skip whitespace between values
    size_t skip = 0;
    while (skip < buffer_.size() && is_space(buffer_[skip])) ++skip;
    buffer_.erase(0, skip);
    if (buffer_.empty()) return Next::need_more;
    if (buffer_[0] != '{' && buffer_[0] != '[') return Next::garbage;
    started_ = true;
    scanned_ = 0;
  }
  for (; scanned_ < buffer_.size(); ++scanned_) {
    if (scanned_ >= max_frame_) return Next::too_large;
    const char c = buffer_[scanned_];
    if (in_string_) {
      if (escaped_) escaped_ = false;
      else if (c == '\\') escaped_ = true;
      else if (c == '"') in_string_ = false;
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        frame.assign(buffer_, 0, scanned_ + 1);
        buffer_.erase(0, scanned_ + 1);
        started_ = false;
        scanned_ = 0;
        return Next::frame;
      }
    }
  }
  return buffer_.size() > max_frame_ ? Next::too_large : Next::need_more;
}

}  // namespace sluice::rpc
