// Login negotiation, target side (negotiation.h).
#include "target/iscsi/negotiation.h"

#include <algorithm>

namespace sluice::iscsi {

// A key negotiated by a rule on values (RFC 7143 section 13): its range, whether it is
// Irrelevant in a Discovery session, and where its value lives on each side.
struct Negotiator::OpKey {
  enum Kind : uint8_t { bool_or, bool_and, num_min, num_max };
  std::string_view name;
  Kind kind;
  uint32_t lo, hi;
  bool discovery_irrelevant;
  uint32_t SessionParams::*num;
  bool SessionParams::*flag;
  uint32_t TargetOptions::*option_num;
  bool TargetOptions::*option_flag;
};

namespace {

using SP = SessionParams;
using TO = TargetOptions;
constexpr uint32_t kMaxLength = (1u << 24) - 1;

bool is_security_key(std::string_view key) { return key == "AuthMethod" || key.starts_with("CHAP_"); }
bool is_login_declaration(std::string_view key) {
  return key == "SessionType" || key == "InitiatorName" || key == "TargetName" || key == "InitiatorAlias";
}
// Responses, not offers: they answer an offer of the target's.
bool is_answer_word(std::string_view v) { return v == "Reject" || v == "NotUnderstood" || v == "Irrelevant"; }

std::optional<bool> parse_bool(std::string_view v) {
  if (v == "Yes") return true;
  if (v == "No") return false;
  return std::nullopt;
}
const char* yes_no(bool b) { return b ? "Yes" : "No"; }

// An iSCSI name (RFC 7143 4.2.7): iqn., eui. or naa. format, at most 223 bytes.
bool valid_iscsi_name(std::string_view n) {
  if (n.size() > 223 || n.size() < 5) return false;
  if (!n.starts_with("iqn.") && !n.starts_with("eui.") && !n.starts_with("naa.")) return false;
  return std::all_of(n.begin(), n.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

LoginStatus fail(uint16_t class_detail, std::string message) { return login_status(class_detail, std::move(message)); }

}  // namespace

const Negotiator::OpKey Negotiator::kOpKeys[] = {
    {"MaxConnections", OpKey::num_min, 1, 65535, true, &SP::max_connections, nullptr, &TO::max_connections, nullptr},
    {"InitialR2T", OpKey::bool_or, 0, 1, true, nullptr, &SP::initial_r2t, nullptr, &TO::initial_r2t},
    {"ImmediateData", OpKey::bool_and, 0, 1, true, nullptr, &SP::immediate_data, nullptr, &TO::immediate_data},
    {"MaxBurstLength", OpKey::num_min, 512, kMaxLength, true, &SP::max_burst_length, nullptr, &TO::max_burst_length,
     nullptr},
    {"FirstBurstLength", OpKey::num_min, 512, kMaxLength, true, &SP::first_burst_length, nullptr,
     &TO::first_burst_length, nullptr},
    {"DefaultTime2Wait", OpKey::num_max, 0, 3600, false, &SP::default_time2wait, nullptr, &TO::default_time2wait,
     nullptr},
    {"DefaultTime2Retain", OpKey::num_min, 0, 3600, false, &SP::default_time2retain, nullptr, &TO::default_time2retain,
     nullptr},
    {"MaxOutstandingR2T", OpKey::num_min, 1, 65535, true, &SP::max_outstanding_r2t, nullptr, &TO::max_outstanding_r2t,
     nullptr},
    {"DataPDUInOrder", OpKey::bool_or, 0, 1, true, nullptr, &SP::data_pdu_in_order, nullptr, &TO::data_pdu_in_order},
    {"DataSequenceInOrder", OpKey::bool_or, 0, 1, true, nullptr, &SP::data_sequence_in_order, nullptr,
     &TO::data_sequence_in_order},
    {"ErrorRecoveryLevel", OpKey::num_min, 0, 2, false, &SP::error_recovery_level, nullptr, &TO::error_recovery_level,
     nullptr},
};

LoginStatus login_status(uint16_t class_detail, std::string message) {
  return {uint8_t(class_detail >> 8), uint8_t(class_detail), std::move(message)};
}

std::optional<uint64_t> parse_number(std::string_view v) {
  if (v.empty()) return std::nullopt;
  const bool hex = v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X');
  if (hex) v.remove_prefix(2);
  uint64_t n = 0;
  const unsigned base = hex ? 16 : 10;
  for (char c : v) {
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = unsigned(c - '0');
    } else if (hex && c >= 'a' && c <= 'f') {
      d = unsigned(c - 'a' + 10);
    } else if (hex && c >= 'A' && c <= 'F') {
      d = unsigned(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    if (n > (UINT64_MAX - d) / base) return std::nullopt;
    n = n * base + d;
  }
  return n;
}

Negotiator::Negotiator(TargetOptions options, ChapTarget::RandomSource random)
    : options_(std::move(options)), random_(std::move(random)) {}

bool Negotiator::irrelevant(const OpKey& k) const {
  if (params_.session_type == SessionType::discovery && k.discovery_irrelevant) return true;
  return k.name == "FirstBurstLength" && params_.initial_r2t && !params_.immediate_data;
}

bool Negotiator::offers_left() const { return !offered_.empty(); }

// The declarations of the first Login Request: who is logging in, to what, for what.
LoginStatus Negotiator::first_request(const std::vector<KeyValue>& keys) {
  if (const KeyValue* t = find_key(keys, "SessionType")) {
    if (t->value == "Discovery") {
      if (!options_.discovery_allowed) return fail(kLoginSessionTypeNotSupported, "discovery sessions are not served");
      params_.session_type = SessionType::discovery;
    } else if (t->value != "Normal") {
      return fail(kLoginSessionTypeNotSupported, "unknown SessionType '" + t->value + "'");
    }
  }
  const KeyValue* in = find_key(keys, "InitiatorName");
  if (in == nullptr) return fail(kLoginMissingParameter, "the first Login Request has no InitiatorName");
  if (!valid_iscsi_name(in->value)) return fail(kLoginInitiatorError, "InitiatorName is not an iSCSI name");
  params_.initiator_name = in->value;
  if (const KeyValue* a = find_key(keys, "InitiatorAlias")) params_.initiator_alias = a->value;
  const KeyValue* tn = find_key(keys, "TargetName");
  if (params_.session_type == SessionType::normal) {
    if (tn == nullptr) return fail(kLoginMissingParameter, "a Normal session's first Login Request has no TargetName");
    if (!valid_iscsi_name(tn->value)) return fail(kLoginNotFound, "TargetName is not an iSCSI name");
    const auto& names = options_.target_names;
    if (!names.empty() && std::find(names.begin(), names.end(), tn->value) == names.end())
      return fail(kLoginNotFound, "no target named '" + tn->value + "'");
  }
  if (tn != nullptr) params_.target_name = tn->value;
  for (const KeyValue& kv : keys)
    if (is_login_declaration(kv.key)) seen_.push_back(kv.key);
  return {};
}

LoginStatus Negotiator::security_key(const KeyValue& kv, std::string& response) {
  if (kv.key != "AuthMethod") return {};  // CHAP_* go to the ChapTarget together
  std::string_view list = kv.value;
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string_view v = list.substr(at, comma - at);
    at = comma + 1;
    const auto& m = options_.auth_methods;
    if (v == "None" && std::find(m.begin(), m.end(), AuthMethod::none) != m.end()) {
      params_.auth_method = AuthMethod::none;
    } else if (v == "CHAP" && (options_.chap || options_.chap_lookup) &&
               std::find(m.begin(), m.end(), AuthMethod::chap) != m.end()) {
      params_.auth_method = AuthMethod::chap;
      chap_.emplace(options_.chap.value_or(ChapCredentials{}), random_);
      if (options_.chap_lookup) chap_->set_lookup(options_.chap_lookup);
    } else {
      continue;
    }
    auth_chosen_ = true;
    append_key(response, "AuthMethod", v);
    return {};
  }
  append_key(response, "AuthMethod", "Reject");
  return fail(kLoginAuthFailure, "no acceptable AuthMethod in '" + kv.value + "'");
}

bool Negotiator::digest_key(const KeyValue& kv, bool& result, std::string& response) {
  std::string_view list = kv.value;
  for (size_t at = 0; at <= list.size();) {
    const size_t comma = std::min(list.find(',', at), list.size());
    const std::string_view v = list.substr(at, comma - at);
    at = comma + 1;
    if ((v == "CRC32C" && options_.accept_crc32c) || (v == "None" && options_.accept_no_digest)) {
      result = v == "CRC32C";
      append_key(response, kv.key, v);
      return true;
    }
  }
  // Nothing acceptable: the default, None, stays, unless the target requires digests.
  if (!options_.accept_no_digest) return false;
  append_key(response, kv.key, "Reject");
  return true;
}

// The initiator offered a value: the result by the key's rule against the target's own.
LoginStatus Negotiator::negotiate(const OpKey& k, const KeyValue& kv, std::string& response) {
  if (irrelevant(k)) {
    append_key(response, kv.key, "Irrelevant");
    return {};
  }
  if (k.flag != nullptr) {
    const auto v = parse_bool(kv.value);
    if (!v) return reject(k, kv, response);
    const bool ours = options_.*k.option_flag;
    const bool r = k.kind == OpKey::bool_or ? (*v || ours) : (*v && ours);
    params_.*k.flag = r;
    append_key(response, kv.key, yes_no(r));
    return {};
  }
  const auto v = parse_number(kv.value);
  if (!v || *v < k.lo || *v > k.hi) return reject(k, kv, response);
  if (k.name == "FirstBurstLength") {
    // It depends on InitialR2T, ImmediateData and MaxBurstLength, which may come after it.
    first_burst_pending_ = true;
    first_burst_offer_ = uint32_t(*v);
    return {};
  }
  const uint32_t ours = std::clamp(options_.*k.option_num, k.lo, k.hi);
  const uint32_t r = k.kind == OpKey::num_min ? std::min(uint32_t(*v), ours) : std::max(uint32_t(*v), ours);
  params_.*k.num = r;
  append_key(response, kv.key, std::to_string(r));
  return {};
}

// A rejected value leaves the key at its default; where the target cannot live with the
// default (it would have offered its own value), the login fails instead.
LoginStatus Negotiator::reject(const OpKey& k, const KeyValue& kv, std::string& response) {
  if (!default_acceptable(k))
    return fail(kLoginInitiatorError,
                "bad value '" + kv.value + "' for " + kv.key + ", whose default the target does not accept");
  append_key(response, kv.key, "Reject");
  return {};
}

bool Negotiator::default_acceptable(const OpKey& k) const {
  const SessionParams defaults;
  if (k.flag != nullptr) {
    const bool def = defaults.*k.flag, ours = options_.*k.option_flag;
    return (k.kind == OpKey::bool_or ? (def || ours) : (def && ours)) == def;
  }
  uint32_t ours = std::clamp(options_.*k.option_num, k.lo, k.hi);
  if (k.name == "FirstBurstLength") ours = std::min(ours, params_.max_burst_length);
  const uint32_t def = defaults.*k.num;
  return (k.kind == OpKey::num_min ? std::min(def, ours) : std::max(def, ours)) == def;
}

void Negotiator::resolve_first_burst(std::string& response) {
  if (!first_burst_pending_) return;
  first_burst_pending_ = false;
  if (params_.initial_r2t && !params_.immediate_data) return append_key(response, "FirstBurstLength", "Irrelevant");
  if (params_.session_type == SessionType::discovery) return append_key(response, "FirstBurstLength", "Irrelevant");
  const uint32_t r =
      std::min({first_burst_offer_, std::max(options_.first_burst_length, 512u), params_.max_burst_length});
  params_.first_burst_length = r;
  append_key(response, "FirstBurstLength", std::to_string(r));
}

// The initiator's answer to one of the target's offers.
LoginStatus Negotiator::answer_offer(const OpKey& k, const KeyValue& kv) {
  offered_.erase(std::find(offered_.begin(), offered_.end(), kv.key));
  if (k.flag != nullptr) {
    const auto v = parse_bool(kv.value);
    const bool ours = options_.*k.option_flag;
    const bool forced = k.kind == OpKey::bool_or ? ours : !ours;  // the only valid result
    if (!v || (*v != ours && forced))
      return fail(kLoginInitiatorError,
                  "the initiator answered the target's " + kv.key + "=" + yes_no(ours) + " with '" + kv.value + "'");
    params_.*k.flag = *v;
    return {};
  }
  const auto v = parse_number(kv.value);
  const uint32_t ours = options_.*k.option_num;
  const bool ok = v && *v >= k.lo && *v <= k.hi && (k.kind == OpKey::num_min ? *v <= ours : *v >= ours);
  if (!ok)
    return fail(kLoginInitiatorError, "the initiator answered the target's " + kv.key + "=" + std::to_string(ours) +
                                          " with '" + kv.value + "'");
  params_.*k.num = uint32_t(*v);
  return {};
}

LoginStatus Negotiator::operational_key(const KeyValue& kv, std::string& response) {
  const std::string& key = kv.key;
  const bool answer = std::find(offered_.begin(), offered_.end(), key) != offered_.end();
  if (key == "HeaderDigest" || key == "DataDigest") {
    bool& result = key == "HeaderDigest" ? params_.header_digest : params_.data_digest;
    if (answer) {
      offered_.erase(std::find(offered_.begin(), offered_.end(), key));
      if (kv.value != "CRC32C") return fail(kLoginInitiatorError, "the initiator refused " + key + "=CRC32C");
      result = true;
      return {};
    }
    if (!digest_key(kv, result, response))
      return fail(kLoginInitiatorError, "the target requires digests; the initiator offers " + key + "=" + kv.value);
    return {};
  }
  for (const OpKey& k : kOpKeys) {
    if (k.name != key) continue;
    if (answer) return answer_offer(k, kv);
    return negotiate(k, kv, response);
  }
  if (key == "MaxRecvDataSegmentLength") {
    // A declaration has no answer: a Reject would read as the target's own declaration of
    // the same key, so a bad value fails the login instead.
    const auto v = parse_number(kv.value);
    if (!v || *v < kMinMaxRecvDataSegmentLength || *v > kMaxLength)
      return fail(kLoginInitiatorError, "MaxRecvDataSegmentLength '" + kv.value + "' is not in 512..16777215");
    params_.initiator_max_recv_data_segment_length = uint32_t(*v);
    return {};
  }
  if (key == "IFMarker" || key == "OFMarker") {
    append_key(response, key, "No");  // RFC 3720 markers, gone from RFC 7143: never used
  } else if (key == "IFMarkInt" || key == "OFMarkInt") {
    append_key(response, key, "Irrelevant");
  } else if (key == "TargetAlias" || key == "TargetPortalGroupTag" || key == "TargetAddress") {
    // The target's own declarations: an answer would repeat the key in the response.
    return fail(kLoginInitiatorError, "the initiator sent " + key + ", which only a target declares");
  } else if (key == "SendTargets") {
    append_key(response, key, "Reject");  // full feature phase only
  } else {
    append_key(response, key, "NotUnderstood");  // X-, X# and keys unknown to RFC 7143
  }
  return {};
}

// Offers for keys the initiator left out where the default would exceed the target's limits.
void Negotiator::make_offers(std::string& response) {
  auto offer = [&](std::string_view key, const std::string& value) {
    append_key(response, key, value);
    offered_.emplace_back(key);
    seen_.emplace_back(key);
  };
  auto was_seen = [&](std::string_view key) { return std::find(seen_.begin(), seen_.end(), key) != seen_.end(); };
  for (const OpKey& k : kOpKeys) {
    if (was_seen(k.name) || irrelevant(k) || default_acceptable(k)) continue;
    if (k.flag != nullptr) {
      offer(k.name, yes_no(options_.*k.option_flag));
    } else {
      uint32_t ours = std::clamp(options_.*k.option_num, k.lo, k.hi);
      if (k.name == "FirstBurstLength") ours = std::min(ours, params_.max_burst_length);
      offer(k.name, std::to_string(ours));
    }
  }
  if (!options_.accept_no_digest) {
    if (!was_seen("HeaderDigest")) offer("HeaderDigest", "CRC32C");
    if (!was_seen("DataDigest")) offer("DataDigest", "CRC32C");
  }
}

void Negotiator::declare(std::string& response) {
  if (declared_) return;
  declared_ = true;
  const uint32_t mrdsl = std::clamp(options_.max_recv_data_segment_length, kMinMaxRecvDataSegmentLength, kMaxLength);
  params_.target_max_recv_data_segment_length = mrdsl;
  append_key(response, "MaxRecvDataSegmentLength", std::to_string(mrdsl));
}

LoginStatus Negotiator::finish() {
  const bool first_burst_relevant =
      params_.session_type == SessionType::normal && !(params_.initial_r2t && !params_.immediate_data);
  if (first_burst_relevant && params_.first_burst_length > params_.max_burst_length)
    return fail(kLoginInitiatorError, "FirstBurstLength " + std::to_string(params_.first_burst_length) +
                                          " exceeds MaxBurstLength " + std::to_string(params_.max_burst_length));
  complete_ = true;
  return {};
}

Negotiator::Step Negotiator::transition(Stage csg, bool transit, Stage nsg) {
  Step s;
  s.nsg = csg;
  if (!transit) return s;
  if (csg == Stage::security) {
    if (!authenticated()) {
      // CHAP agreed in this very request (libiscsi asks to transit in the PDU that offers
      // AuthMethod=CHAP,None): stay in the security stage, T clear, as RFC 7143 6.2 lets a
      // target; the CHAP exchange follows. Once CHAP keys came, leaving early fails.
      if (auth_chosen_ && params_.auth_method == AuthMethod::chap && chap_ && !chap_started_) return s;
      s.status = fail(kLoginAuthFailure, "the initiator leaves the security stage unauthenticated");
      return s;
    }
    if (nsg == Stage::security) {
      s.status = fail(kLoginInitiatorError, "a transit from the security stage to itself");
      return s;
    }
    // Declarations and offers are made in the operational stage: go there first if any are due.
    std::string scratch;
    Negotiator probe = *this;
    probe.make_offers(scratch);
    if (nsg == Stage::full_feature && (!declared_ || probe.offers_left())) nsg = Stage::operational;
  } else if (nsg != Stage::full_feature) {
    s.status = fail(kLoginInitiatorError, "the operational stage can only lead to full feature phase");
    return s;
  } else if (offers_left()) {
    return s;  // the target's offers are not answered yet: stay (T clear)
  }
  if (nsg == Stage::full_feature) {
    s.status = finish();
    if (!s.status.ok()) return s;
  }
  s.transit = true;
  s.nsg = nsg;
  stage_ = nsg;
  return s;
}

bool Negotiator::authenticated() const {
  if (auth_chosen_) return params_.auth_method == AuthMethod::none || (chap_ && chap_->authenticated());
  const auto& m = options_.auth_methods;
  return std::find(m.begin(), m.end(), AuthMethod::none) != m.end();
}

Negotiator::Step Negotiator::respond(const std::vector<KeyValue>& keys, Stage csg, bool transit, Stage nsg,
                                     std::string& response) {
  Step s;
  s.nsg = csg;
  if (complete_) {
    s.status = fail(kLoginInvalidDuringLogin, "a Login Request after the login completed");
    return s;
  }
  if (csg != Stage::security && csg != Stage::operational) {
    s.status = fail(kLoginInitiatorError, "a Login Request in stage " + std::to_string(int(csg)));
    return s;
  }
  if (started_ && csg != stage_) {
    s.status = fail(kLoginInitiatorError, "a Login Request for stage " + std::to_string(int(csg)) +
                                              " while the login is in stage " + std::to_string(int(stage_)));
    return s;
  }
  if (csg == Stage::operational && !authenticated()) {
    s.status = fail(kLoginAuthFailure, "the target requires authentication; the initiator skipped it");
    return s;
  }
  const bool first = !started_;
  if (first) {
    started_ = true;
    stage_ = csg;
    s.status = first_request(keys);
    if (!s.status.ok()) return s;
    if (params_.session_type == SessionType::normal) {
      if (!options_.target_alias.empty()) append_key(response, "TargetAlias", options_.target_alias);
      append_key(response, "TargetPortalGroupTag", std::to_string(options_.target_portal_group_tag));
    }
  }
  bool chap_keys = false;
  for (const KeyValue& kv : keys) {
    if (is_login_declaration(kv.key)) {
      if (!first) {
        s.status = fail(kLoginInitiatorError, kv.key + " is only allowed in the first Login Request");
        return s;
      }
      continue;
    }
    if (kv.key.starts_with("CHAP_")) {
      chap_keys = true;
      continue;
    }
    const bool answer = std::find(offered_.begin(), offered_.end(), kv.key) != offered_.end();
    if (!answer && is_answer_word(kv.value)) continue;  // a response to nothing the target offered
    if (!answer && std::find(seen_.begin(), seen_.end(), kv.key) != seen_.end()) {
      s.status = fail(kLoginInitiatorError, "key " + kv.key + " negotiated twice");
      return s;
    }
    if (!answer) seen_.push_back(kv.key);
    if (is_security_key(kv.key)) {
      if (csg != Stage::security) {
        s.status = fail(kLoginInvalidDuringLogin, kv.key + " outside the security stage");
        return s;
      }
      s.status = security_key(kv, response);
    } else {
      s.status = operational_key(kv, response);
    }
    if (!s.status.ok()) return s;
  }
  if (chap_keys) {
    if (csg != Stage::security || !chap_) {
      s.status = fail(kLoginInitiatorError, "CHAP keys without AuthMethod=CHAP agreed in the security stage");
      return s;
    }
    chap_started_ = true;
    if (Status st = chap_->handle(keys, response); !st.ok()) {
      s.status = fail(kLoginAuthFailure, st.message());
      return s;
    }
  }
  resolve_first_burst(response);
  if (csg == Stage::operational) {
    declare(response);
    make_offers(response);
  }
  return transition(csg, transit, nsg);
}

}  // namespace sluice::iscsi
