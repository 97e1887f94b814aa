// Fuzz target: iSCSI login as the target meets it (src/target/iscsi/text_keys.h,
// negotiation.h, chap.h): key=value text split over C-bit PDUs, negotiation across stages,
// CHAP responses, SendTargets answers.
//
// Input: byte 0 picks the target's options (bit 0: CHAP required, bit 1: mutual CHAP, bit 2:
// digests required, bit 3: ImmediateData=No, bit 4: MaxBurstLength 16384, bit 5: no
// discovery, bit 6: a fixed TargetName list). Then records: one flags byte (bits 0-1 CSG:
// 0, 1, 3 or 2; bit 2 T; bits 3-4 NSG; bit 5 C; bit 6: the harness appends a correct
// CHAP_N/CHAP_R for the last challenge, to get past authentication), a big-endian 16-bit length,
// that many bytes of text. Besides "never crash", it checks that every response the target builds
// parses back without a repeated key, that a login reaching full feature phase has
// parameters within RFC 7143's ranges, and it runs the binary and number parsers too.
// SLUICE_FUZZ_LOG=1 prints each step's outcome.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "target/iscsi/chap.h"
#include "target/iscsi/negotiation.h"
#include "target/iscsi/send_targets.h"
#include "target/iscsi/text_keys.h"

namespace sluice::fuzz {
namespace {

using namespace sluice::iscsi;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "iscsi_login_fuzz: BROKEN PROMISE: %s\n", what);
  std::abort();
}

constexpr char kUser[] = "iqn.2026-12.fuzz:init";
constexpr char kSecret[] = "initiator-secret";

void check_params(const SessionParams& p, const TargetOptions& o) {
  if (p.initiator_max_recv_data_segment_length < 512 || p.initiator_max_recv_data_segment_length > 16777215)
    broken("MaxRecvDataSegmentLength out of range");
  if (!o.accept_no_digest && (!p.header_digest || !p.data_digest)) broken("digests off against the target's will");
  if (p.initiator_name.empty()) broken("a login without InitiatorName");
  if (p.session_type == SessionType::normal && p.target_name.empty()) broken("a Normal login without TargetName");
  if (!o.auth_methods.empty() && o.auth_methods[0] == AuthMethod::chap && p.auth_method != AuthMethod::chap)
    broken("a login past CHAP without CHAP");
  if (p.error_recovery_level != 0) broken("ErrorRecoveryLevel other than 0");
  if (p.max_connections != 1) broken("MaxConnections other than 1");
  // The rest is Irrelevant in a Discovery session.
  if (p.session_type == SessionType::discovery) return;
  if (p.max_burst_length < 512 || p.max_burst_length > o.max_burst_length) broken("MaxBurstLength out of range");
  const bool fb = !(p.initial_r2t && !p.immediate_data);
  if (fb && p.first_burst_length > p.max_burst_length) broken("FirstBurstLength over MaxBurstLength");
  if (!o.immediate_data && p.immediate_data) broken("ImmediateData=Yes against the target's No");
}

void run(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  // The standalone parsers on the raw bytes.
  (void)parse_text(raw);
  (void)decode_binary(raw, 64);
  (void)parse_number(raw.substr(0, 24));

  static const bool log = std::getenv("SLUICE_FUZZ_LOG") != nullptr;
  const uint8_t mode = data[0];
  TargetOptions o;
  if (mode & 1) {
    o.auth_methods = {AuthMethod::chap};
    o.chap = ChapCredentials{kUser, kSecret, "", ""};
    if (mode & 2) o.chap->target_name = "iqn.2026-12.fuzz:tgt", o.chap->target_secret = "target-secret-x";
  }
  if (mode & 4) o.accept_no_digest = false;
  if (mode & 8) o.immediate_data = false;
  if (mode & 0x10) o.max_burst_length = 16384;
  if (mode & 0x20) o.discovery_allowed = false;
  if (mode & 0x40) o.target_names = {"iqn.2026-12.fuzz:disk"};
  uint8_t counter = 0;
  Negotiator neg(o, [&counter](uint8_t* out, size_t n) {
    for (size_t i = 0; i < n; ++i) out[i] = counter++;
  });

  constexpr Stage kStages[] = {Stage::security, Stage::operational, Stage::full_feature, Stage(2)};
  TextAccumulator acc(4096);
  std::string last_response;
  size_t at = 1;
  while (at + 3 <= size) {
    const uint8_t flags = data[at];
    const size_t len = std::min<size_t>(size_t{data[at + 1]} << 8 | data[at + 2], size - at - 3);
    std::string text(raw.substr(at + 3, len));
    at += 3 + len;
    const bool more = flags & 0x20;
    if (!acc.add({reinterpret_cast<const uint8_t*>(text.data()), text.size()}, more).ok()) return;
    if (!acc.complete()) continue;
    auto keys = acc.take();
    if (!keys.ok()) return;  // the server answers a malformed text with a login failure
    if (const KeyValue* st = find_key(*keys, "SendTargets")) {
      static const std::vector<TargetRecord> kTargets = {{"iqn.2026-12.fuzz:disk", {{"192.0.2.1:3260", 1}}}};
      const std::string answer =
          answer_send_targets(st->value, kTargets, neg.params().session_type, neg.params().target_name);
      if (!answer.empty() && answer.back() != '\0') broken("a SendTargets answer not ending in NUL");
    }
    if (flags & 0x40) {
      // Answer the last challenge correctly, as a real initiator would.
      auto prev = parse_text(last_response);
      if (prev.ok()) {
        const KeyValue* id = find_key(*prev, "CHAP_I");
        const KeyValue* c = find_key(*prev, "CHAP_C");
        if (id && c && !find_key(*keys, "CHAP_N") && !find_key(*keys, "CHAP_R")) {
          const auto challenge = decode_binary(c->value, kMaxChapChallenge);
          const auto n = parse_number(id->value);
          if (challenge && n && *n < 256) {
            keys->push_back({"CHAP_N", kUser});
            keys->push_back({"CHAP_R", encode_hex(chap_response(uint8_t(*n), kSecret, *challenge))});
          }
        }
      }
    }
    std::string response;
    const Negotiator::Step step =
        neg.respond(*keys, kStages[flags & 3], flags & 4, kStages[(flags >> 3) & 3], response);
    if (log) {
      std::string shown = response;
      std::replace(shown.begin(), shown.end(), '\0', ' ');
      std::fprintf(stderr, "step: status %02x%02x (%s) transit %d nsg %d complete %d; response: %s\n",
                   step.status.status_class, step.status.status_detail, step.status.message.c_str(), step.transit,
                   int(step.nsg), neg.complete(), shown.c_str());
    }
    if (!step.status.ok()) {
      if (step.status.message.empty()) broken("a login failure without a message");
      return;
    }
    auto back = parse_text(response);
    if (!back.ok()) {
      std::fprintf(stderr, "%s\n", back.status().to_string().c_str());
      broken("the target built a response that does not parse");
    }
    if (step.transit && step.nsg == Stage::full_feature) {
      if (!neg.complete()) broken("a transit to full feature phase without completing");
      if (!neg.authenticated()) broken("a login completed without authentication");
      check_params(neg.params(), o);
    }
    if (!step.transit && step.nsg != kStages[flags & 3]) broken("no transit, but NSG changed");
    last_response = std::move(response);
  }
}

}  // namespace
}  // namespace sluice::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::fuzz::run(data, size);
  return 0;
}
