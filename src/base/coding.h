// Little-endian encoding of integers into byte buffers, as in LevelDB's coding.h. Every
// on-disk format in Sluice is little-endian and goes through these.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sluice {

template <typename T>
inline void put_le(char* dst, T v) {
  static_assert(std::is_unsigned_v<T>);
  for (size_t i = 0; i < sizeof(T); ++i) dst[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
template <typename T>
inline T get_le(const char* src) {
  static_assert(std::is_unsigned_v<T>);
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<unsigned char>(src[i])) << (8 * i);
  return v;
}

// Appends to a growing string.
class Encoder {
 public:
  explicit Encoder(std::string& out) : out_(out) {}
  template <typename T>
  void put(T v) {
    char b[sizeof(T)];
    put_le(b, v);
    out_.append(b, sizeof(T));
  }
  void bytes(std::string_view s) { out_.append(s); }

 private:
  std::string& out_;
};

// Reads from a bounded buffer; any read past the end sets failed() and yields zeroes, so a
// parser of untrusted bytes checks once at the end instead of before every field.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}
  template <typename T>
  T get() {
    if (in_.size() < sizeof(T)) {
      failed_ = true;
      in_ = {};
      return 0;
    }
    T v = get_le<T>(in_.data());
    in_.remove_prefix(sizeof(T));
    return v;
  }
  std::string_view bytes(size_t n) {
    if (in_.size() < n) {
      failed_ = true;
      in_ = {};
      return {};
    }
    std::string_view v = in_.substr(0, n);
    in_.remove_prefix(n);
    return v;
  }
  size_t remaining() const { return in_.size(); }
  bool failed() const { return failed_; }

 private:
  std::string_view in_;
  bool failed_ = false;
};

}  // namespace sluice
