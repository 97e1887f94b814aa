// CHAP authentication in the security stage of an iSCSI login, target side (RFC 1994 as
// RFC 7143 section 12.1.3 uses it): CHAP_A=5 (MD5) only, one-way or mutual.
//
//   initiator: AuthMethod=CHAP               target: AuthMethod=CHAP      (negotiation.h)
//   initiator: CHAP_A=<list>                 target: CHAP_A=5 CHAP_I=<id> CHAP_C=<challenge>
//   initiator: CHAP_N=<name> CHAP_R=<resp>   target verifies; login goes on
//     mutual:  ... CHAP_I=<id> CHAP_C=<c>    target: CHAP_N=<its name> CHAP_R=<its response>
//
// The response to identifier I and challenge C under secret S is MD5(I || S || C), I one
// byte. Binary values travel as 0x<hex> or 0b<base64> (RFC 7143 6.1). Challenges are 16
// random bytes (getrandom()); a challenge from the initiator equal to the target's own is
// refused (a reflection attack), and the two directions must have different secrets.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "target/iscsi/text_keys.h"

namespace sluice::iscsi {

inline constexpr uint8_t kChapMd5 = 5;  // CHAP_A
inline constexpr size_t kChapDigestSize = 16;
inline constexpr size_t kChapChallengeSize = 16;
// RFC 7143 12.1.3: secrets of at least 96 bits; long ones are a configuration mistake.
inline constexpr size_t kMinChapSecret = 12, kMaxChapSecret = 255;
// Challenges an initiator may send (binary bytes): at least one, at most 1024.
inline constexpr size_t kMaxChapChallenge = 1024;

using ChapDigest = std::array<uint8_t, kChapDigestSize>;

// What the target knows: who the initiator must be, and (mutual) who the target is.
struct ChapCredentials {
  std::string initiator_name;    // CHAP_N the initiator must send
  std::string initiator_secret;  // the secret it proves
  std::string target_name;       // mutual: CHAP_N the target answers with
  std::string target_secret;     // mutual: empty for one-way CHAP
  bool mutual() const { return !target_secret.empty(); }
};
Status check_credentials(const ChapCredentials& c);

// MD5(id || secret || challenge).
ChapDigest chap_response(uint8_t id, std::string_view secret, std::span<const uint8_t> challenge);

// A binary-value (0x hex or 0b base64) of at most `max` bytes; nullopt if malformed or empty.
std::optional<std::vector<uint8_t>> decode_binary(std::string_view value, size_t max);
// "0x" and lower-case hex.
std::string encode_hex(std::span<const uint8_t> bytes);

class ChapTarget {
 public:
  // Fills a buffer with random bytes: getrandom() unless a test gives its own.
  using RandomSource = std::function<void(uint8_t*, size_t)>;

  // The credentials for the CHAP_N the initiator sends; nullopt: an unknown name.
  using Lookup = std::function<std::optional<ChapCredentials>(std::string_view chap_name)>;

  explicit ChapTarget(ChapCredentials credentials, RandomSource random = {});
  // Set: the credentials come from `lookup` by CHAP_N (a group of secrets) instead of the
  // constructor's.
  void set_lookup(Lookup lookup) { lookup_ = std::move(lookup); }

  // The CHAP_* keys of one Login Request in, the target's CHAP keys appended to `response`.
  // An error means the authentication failed (status class 2, detail 1).
  Status handle(const std::vector<KeyValue>& keys, std::string& response);
  // The initiator proved its secret (and, mutual, got the target's answer).
  bool authenticated() const { return state_ == State::done; }

 private:
  enum class State : uint8_t { want_algorithm, want_response, done, failed };

  Status fail(std::string message);

  ChapCredentials creds_;
  Lookup lookup_;
  RandomSource random_;
  State state_ = State::want_algorithm;
  uint8_t id_ = 0;
  std::array<uint8_t, kChapChallengeSize> challenge_{};
};

}  // namespace sluice::iscsi
