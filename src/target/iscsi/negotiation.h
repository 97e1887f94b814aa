// Login negotiation, target side (RFC 7143 sections 6 and 13): the keys of each Login
// Request answered by the rules each key has (list choice, Boolean AND/OR, numerical
// minimum/maximum, declarations), the target's own offers and declarations, what may be
// left out and what must be there, and the session/connection parameters that result.
//
// The server, per Login Request (CSG, T, NSG from the header, keys from TextAccumulator):
//   Negotiator::Step s = neg.respond(keys, csg, transit, nsg, response_text);
//   if (!s.status.ok()) -> Login Response with s.status (class/detail), no keys
//   else -> Login Response with T = s.transit, NSG = s.nsg, data = response_text (split
//           with text_chunk() and the C bit beyond 8192 bytes, the login-phase limit);
//           on s.transit to full feature phase, neg.params() is what was agreed.
// Session matters (ISID/TSIH, reinstatement, versions, CmdSN) are the server's.
// Values out of range or malformed are answered key=Reject (and the default stays), except
// where the target cannot accept the default (it would have offered its own value) and for
// MaxRecvDataSegmentLength, a declaration: there they fail the login. Keys
// the target does not know (X- and X# private ones included) NotUnderstood; keys that do not
// apply (FirstBurstLength with InitialR2T=Yes and ImmediateData=No; session keys in a
// Discovery session) Irrelevant.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "target/iscsi/chap.h"
#include "target/iscsi/pdu.h"
#include "target/iscsi/text_keys.h"

namespace sluice::iscsi {

enum class SessionType : uint8_t { normal, discovery };
enum class AuthMethod : uint8_t { none, chap };

// The Status-Class and Status-Detail of a Login Response (RFC 7143 11.13.5).
struct LoginStatus {
  uint8_t status_class = 0;
  uint8_t status_detail = 0;
  std::string message;  // for the log: never sent
  bool ok() const { return status_class == 0; }
};
inline constexpr uint16_t kLoginInitiatorError = 0x0200, kLoginAuthFailure = 0x0201,
                          kLoginAuthorizationFailure = 0x0202, kLoginNotFound = 0x0203, kLoginMissingParameter = 0x0207,
                          kLoginSessionTypeNotSupported = 0x0209, kLoginInvalidDuringLogin = 0x020b,
                          kLoginTargetError = 0x0300;
LoginStatus login_status(uint16_t class_detail, std::string message);

// What the target accepts and prefers; the defaults suit a target with ErrorRecoveryLevel 0.
struct TargetOptions {
  // Targets this portal serves (TargetName must be one of them); empty: any name.
  std::vector<std::string> target_names;
  std::string target_alias;  // declared in the first response when not empty
  uint16_t target_portal_group_tag = 1;
  // Authentication the target accepts; CHAP needs `chap`.
  std::vector<AuthMethod> auth_methods = {AuthMethod::none};
  std::optional<ChapCredentials> chap;
  ChapTarget::Lookup chap_lookup;  // set: CHAP's credentials by CHAP_N (then `chap` may be unset)
  bool discovery_allowed = true;
  // Digests the target accepts (it takes the first of the initiator's list it accepts).
  bool accept_crc32c = true;
  bool accept_no_digest = true;
  // The target's side of each negotiated key (RFC 7143 section 13).
  uint32_t max_connections = 1;
  bool initial_r2t = true;
  bool immediate_data = true;
  uint32_t max_recv_data_segment_length = 256 * 1024;  // declared: what the target receives
  uint32_t max_burst_length = 1024 * 1024;
  uint32_t first_burst_length = 256 * 1024;
  uint32_t default_time2wait = 2;
  uint32_t default_time2retain = 20;
  uint32_t max_outstanding_r2t = 1;
  bool data_pdu_in_order = true;
  bool data_sequence_in_order = true;
  uint32_t error_recovery_level = 0;
};

// The agreed parameters, RFC 7143 defaults until negotiated.
struct SessionParams {
  SessionType session_type = SessionType::normal;
  std::string initiator_name, initiator_alias, target_name;
  AuthMethod auth_method = AuthMethod::none;
  bool header_digest = false;
  bool data_digest = false;
  uint32_t max_connections = 1;
  bool initial_r2t = true;
  bool immediate_data = true;
  // The initiator's declaration: the most the target may put in one PDU's data segment.
  uint32_t initiator_max_recv_data_segment_length = kDefaultMaxRecvDataSegmentLength;
  // The target's declaration: what its reader accepts once login is over.
  uint32_t target_max_recv_data_segment_length = kDefaultMaxRecvDataSegmentLength;
  uint32_t max_burst_length = 262144;
  uint32_t first_burst_length = 65536;
  uint32_t default_time2wait = 2;
  uint32_t default_time2retain = 20;
  uint32_t max_outstanding_r2t = 1;
  bool data_pdu_in_order = true;
  bool data_sequence_in_order = true;
  uint32_t error_recovery_level = 0;
};

// A numerical-value: decimal or 0x hex, below 2^64; nullopt if malformed.
std::optional<uint64_t> parse_number(std::string_view v);

class Negotiator {
 public:
  explicit Negotiator(TargetOptions options, ChapTarget::RandomSource random = {});

  struct Step {
    LoginStatus status;  // not ok: the login fails with it
    bool transit = false;
    Stage nsg = Stage::security;
  };
  // Answers one Login Request: its keys (the whole C-bit sequence), its CSG, T and NSG.
  // Appends the response keys to `response`.
  Step respond(const std::vector<KeyValue>& keys, Stage csg, bool transit, Stage nsg, std::string& response);

  const SessionParams& params() const { return params_; }
  // The login reached full feature phase.
  bool complete() const { return complete_; }
  // The initiator proved who it is, or the target accepts AuthMethod=None.
  bool authenticated() const;

 private:
  struct OpKey;
  static const OpKey kOpKeys[];

  LoginStatus first_request(const std::vector<KeyValue>& keys);
  LoginStatus security_key(const KeyValue& kv, std::string& response);
  LoginStatus operational_key(const KeyValue& kv, std::string& response);
  LoginStatus answer_offer(const OpKey& k, const KeyValue& kv);
  LoginStatus negotiate(const OpKey& k, const KeyValue& kv, std::string& response);
  LoginStatus reject(const OpKey& k, const KeyValue& kv, std::string& response);
  bool default_acceptable(const OpKey& k) const;
  bool digest_key(const KeyValue& kv, bool& result, std::string& response);
  void resolve_first_burst(std::string& response);
  void make_offers(std::string& response);
  void declare(std::string& response);
  bool offers_left() const;
  bool irrelevant(const OpKey& k) const;
  Step transition(Stage csg, bool transit, Stage nsg);
  LoginStatus finish();

  TargetOptions options_;
  SessionParams params_;
  std::optional<ChapTarget> chap_;
  bool chap_started_ = false;  // CHAP keys arrived (CHAP_A on)
  ChapTarget::RandomSource random_;
  bool started_ = false;
  Stage stage_ = Stage::security;  // where the login is: each request's CSG must be this
  bool auth_chosen_ = false;
  bool declared_ = false;
  bool complete_ = false;
  bool first_burst_pending_ = false;  // FirstBurstLength offered: answered once the text is read
  uint32_t first_burst_offer_ = 0;
  std::vector<std::string> seen_;     // keys negotiated so far: each only once
  std::vector<std::string> offered_;  // the target's offers not yet answered
};

}  // namespace sluice::iscsi
