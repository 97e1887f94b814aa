// The login phase (RFC 7143 sections 6 and 11.12-11.13) and the other non-SCSI requests of
// the full feature phase: Text (SendTargets), NOP-Out, Logout. Keys are the Negotiator's;
// the session matters (ISID/TSIH, versions, StatSN and CmdSN, which node) are here.
#include <algorithm>

#include <fmt/format.h>

#include "base/log.h"
#include "target/iscsi/connection.h"

namespace sluice::iscsi::detail {
namespace {

// The most key=value text one Login Response carries before the login-phase C-bit rules.
constexpr size_t kLoginSegment = kDefaultMaxRecvDataSegmentLength;

constexpr uint16_t kLoginOutOfResources = 0x0302;

std::string isid_hex(const uint8_t* isid) {
  return fmt::format("{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}", isid[0], isid[1], isid[2], isid[3], isid[4], isid[5]);
}

}  // namespace

LoginStatus Connection::begin_login(const LoginRequest& req, const std::vector<KeyValue>& keys) {
  snap_ = state_->snapshot();
  cid_ = req.cid;
  const GlobalOptions& g = state_->options;
  TargetOptions o;
  o.target_portal_group_tag = pg_tag_;
  o.initial_r2t = g.initial_r2t;
  o.immediate_data = g.immediate_data;
  o.max_recv_data_segment_length = g.max_recv_data_segment_length;
  o.max_burst_length = g.max_burst_length;
  o.first_burst_length = g.first_burst_length;
  o.max_connections = g.max_connections_per_session;
  o.default_time2wait = g.default_time2wait;
  o.default_time2retain = g.default_time2retain;
  o.error_recovery_level = g.error_recovery_level;
  if (!snap_->portal_groups.contains(pg_tag_))
    return login_status(kLoginNotFound, fmt::format("portal group {} was deleted", pg_tag_));
  const KeyValue* initiator = find_key(keys, "InitiatorName");
  if (initiator == nullptr) return login_status(kLoginMissingParameter, "no InitiatorName");
  const KeyValue* type = find_key(keys, "SessionType");
  if (type != nullptr && type->value == "Discovery") {
    snap_->apply_chap(snap_->discovery_auth, o);
  } else {
    const KeyValue* tn = find_key(keys, "TargetName");
    if (tn == nullptr) return login_status(kLoginMissingParameter, "a Normal session without TargetName");
    auto it = snap_->nodes.find(tn->value);
    if (it == snap_->nodes.end()) return login_status(kLoginNotFound, fmt::format("no target node '{}'", tn->value));
    const Node& n = it->second;
    // A node its portal groups do not offer here is not found here, as SendTargets says.
    const auto& maps = n.config.pg_ig_maps;
    if (std::none_of(maps.begin(), maps.end(), [&](const PgIgMap& m) { return m.pg_tag == pg_tag_; }))
      return login_status(kLoginNotFound,
                          fmt::format("'{}' is not reached through portal group {}", tn->value, pg_tag_));
    if (!snap_->allowed(n, pg_tag_, initiator->value, peer_address_))
      return login_status(kLoginAuthorizationFailure,
                          fmt::format("'{}' at {} may not log in to '{}'", initiator->value, peer_address_, tn->value));
    node_name_ = n.config.name;
    node_config_ = n.config;
    node_rt_ = n.rt;
    queue_depth_ = n.config.queue_depth;
    o.target_names = {n.config.name};
    o.target_alias = n.config.alias;
    snap_->apply_chap(n.config.chap, o);
  }
  neg_.emplace(std::move(o));
  return {};
}

LoginStatus Connection::attach_session() {
  const SessionParams& p = neg_->params();
  const bool normal = p.session_type == SessionType::normal;
  if (normal && node_config_.header_digest && !p.header_digest)
    return login_status(kLoginInitiatorError, "the target node requires HeaderDigest=CRC32C");
  if (normal && node_config_.data_digest && !p.data_digest)
    return login_status(kLoginInitiatorError, "the target node requires DataDigest=CRC32C");
  if (state_->sessions.fetch_add(1) >= state_->options.max_sessions) {
    state_->sessions.fetch_sub(1);
    return login_status(kLoginOutOfResources, fmt::format("{} sessions already", state_->options.max_sessions));
  }
  counted_ = true;
  if (!normal) return {};
  std::lock_guard lock(node_rt_->mu);
  if (node_rt_->deleted) return login_status(kLoginNotFound, fmt::format("'{}' was deleted", node_name_));
  ++node_rt_->sessions;
  attached_ = true;
  return {};
}

bool Connection::fail_login(const LoginRequest& req, const LoginStatus& st) {
  log::info("iscsi: {}: login failed ({:02x}{:02x}): {}", peer_, st.status_class, st.status_detail, st.message);
  LoginResponse r;
  r.csg = req.csg;
  std::copy(std::begin(req.isid), std::end(req.isid), r.isid);
  r.itt = req.itt;
  r.stat_sn = next_stat_sn();
  r.exp_cmd_sn = exp_cmd_sn_;
  r.max_cmd_sn = exp_cmd_sn_;
  r.status_class = st.status_class;
  r.status_detail = st.status_detail;
  draining_ = true;
  send_pdu(r, {}, nullptr, /*close_after=*/true);
  return true;
}

bool Connection::login_request(const Pdu& pdu, std::span<const uint8_t> data) {
  const auto& req = std::get<LoginRequest>(pdu.header);
  const bool first = !neg_.has_value();
  if (first) {
    std::copy(std::begin(req.isid), std::end(req.isid), isid_);
    exp_cmd_sn_ = req.cmd_sn;  // a Login Request is immediate: its CmdSN is the first one expected
    stat_sn_ = req.exp_stat_sn;
    if (req.version_min > 0) return fail_login(req, login_status(0x0205, "unsupported version"));
    if (req.tsih != 0) return fail_login(req, login_status(0x020a, "adding a connection to a session"));
  } else if (!std::equal(std::begin(req.isid), std::end(req.isid), isid_)) {
    return fail_login(req, login_status(kLoginInitiatorError, "ISID changed during login"));
  }
  if (Status st = login_text_.add(data, req.cont); !st.ok())
    return fail_login(req, login_status(kLoginInitiatorError, st.to_string()));
  LoginResponse r;
  r.csg = req.csg;
  r.nsg = req.nsg;
  std::copy(std::begin(req.isid), std::end(req.isid), r.isid);
  r.itt = req.itt;
  if (!login_text_.complete()) {  // more key text follows: an empty response asks for it
    r.transit = false;
    r.stat_sn = next_stat_sn();
    r.exp_cmd_sn = exp_cmd_sn_;
    r.max_cmd_sn = max_cmd_sn();
    send_pdu(r, {});
    return true;
  }
  auto keys = login_text_.take();
  if (!keys.ok()) return fail_login(req, login_status(kLoginInitiatorError, keys.status().to_string()));
  if (first) {
    LoginStatus st = begin_login(req, keys.value());
    if (!st.ok()) return fail_login(req, st);
  }
  std::string text;
  Negotiator::Step step = neg_->respond(keys.value(), Stage(req.csg), req.transit, Stage(req.nsg), text);
  if (!step.status.ok()) return fail_login(req, step.status);
  if (text.size() > kLoginSegment)
    return fail_login(req, login_status(kLoginTargetError, "login response text beyond one PDU"));
  r.transit = step.transit;
  r.nsg = step.transit ? uint8_t(step.nsg) : 0;
  if (neg_->complete()) {
    LoginStatus st = attach_session();
    if (!st.ok()) return fail_login(req, st);
    uint16_t tsih = state_->next_tsih.fetch_add(1);
    if (tsih == 0) tsih = state_->next_tsih.fetch_add(1);
    r.tsih = tsih;
    tsih_ = tsih;
  }
  r.stat_sn = next_stat_sn();
  r.exp_cmd_sn = exp_cmd_sn_;
  r.max_cmd_sn = max_cmd_sn();
  send_pdu(r, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  if (neg_->complete()) return enter_full_feature();
  return true;
}

bool Connection::enter_full_feature() {
  params_ = neg_->params();
  if (params_.session_type == SessionType::normal) {
    device_ = &node_rt_->device;
    channel_ = std::make_unique<scsi::Channel>(*device_);
    nexus_ = device_->add_nexus(fmt::format("{},i,0x{}", params_.initiator_name, isid_hex(isid_)), pg_tag_);
  }
  snap_.reset();
  full_feature_ = true;
  start_pings();
  if (params_.session_type == SessionType::normal && !state_->options.allow_duplicated_isid) {
    // The old session may be on any reactor; it closes soon after this one starts.
    std::array<uint8_t, 6> isid;
    std::copy(std::begin(isid_), std::end(isid_), isid.begin());
    for (uint32_t r = 0; r < thread::reactor_count(); ++r)
      (void)thread::send_message(r, [s = state_, rt = node_rt_, name = params_.initiator_name, isid, tsih = tsih_] {
        close_port(s.get(), rt.get(), name, isid, tsih);
      });
  }
  // Digests and the target's MaxRecvDataSegmentLength hold from the next PDU either way.
  RxParams rx = reader_.params();
  rx.header_digest = params_.header_digest;
  rx.data_digest = params_.data_digest;
  rx.max_recv_data_segment_length = params_.target_max_recv_data_segment_length;
  reader_.set_params(rx);
  tx_.header_digest = params_.header_digest;
  tx_.data_digest = params_.data_digest;
  log::info("iscsi: {}: {} session for '{}' from '{}'", peer_,
            params_.session_type == SessionType::normal ? "normal" : "discovery", params_.target_name,
            params_.initiator_name);
  return true;
}

void Connection::text_request(const Pdu& pdu, std::span<const uint8_t> data) {
  const auto& req = std::get<TextRequest>(pdu.header);
  if (!accept_cmd_sn(req.immediate, req.cmd_sn)) return;
  if (req.ttt != kReservedTag) {  // the initiator asks for the rest of our answer
    if (text_off_ < text_out_.size()) return send_text_chunk(req.itt);
    return send_reject(RejectReason::invalid_pdu_field, reader_.bhs());
  }
  if (req.cont) return send_reject(RejectReason::command_not_supported, reader_.bhs());
  auto keys = parse_text(data);
  if (!keys.ok()) return send_reject(RejectReason::protocol_error, reader_.bhs());
  text_out_.clear();
  text_off_ = 0;
  for (const KeyValue& kv : keys.value()) {
    if (kv.key == "SendTargets") {
      // Read now: nodes and groups added since the login show.
      const auto records = state_->snapshot()->visible(params_.initiator_name, peer_address_);
      text_out_ += answer_send_targets(kv.value, records, params_.session_type, node_name_);
    } else {
      append_key(text_out_, kv.key, "NotUnderstood");
    }
  }
  send_text_chunk(req.itt);
}

bool Connection::same_port(const NodeRuntime* node, const std::string& initiator, const uint8_t* isid,
                           uint16_t tsih) const {
  return full_feature_ && node_rt_.get() == node && tsih_ != tsih && params_.initiator_name == initiator &&
         std::equal(std::begin(isid_), std::end(isid_), isid);
}

ConnectionInfo Connection::info() const {
  ConnectionInfo i;
  i.initiator_name = params_.initiator_name;
  i.target_node = node_name_;
  i.session_type = !full_feature_ ? "login" : params_.session_type == SessionType::normal ? "normal" : "discovery";
  i.portal = portal_;
  i.pg_tag = pg_tag_;
  i.initiator_address = peer_;
  i.isid = isid_hex(isid_);
  i.tsih = tsih_;
  i.cid = cid_;
  return i;
}

void Connection::send_text_chunk(uint32_t itt) {
  std::string_view chunk = text_chunk(text_out_, text_off_, params_.initiator_max_recv_data_segment_length);
  text_off_ += chunk.size();
  const bool more = text_off_ < text_out_.size();
  TextResponse r;
  r.final = !more;
  r.cont = more;
  r.itt = itt;
  r.ttt = more ? next_ttt_++ : kReservedTag;
  r.stat_sn = next_stat_sn();
  r.exp_cmd_sn = exp_cmd_sn_;
  r.max_cmd_sn = max_cmd_sn();
  send_pdu(r, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size()));
}

void Connection::logout_request(const LogoutRequest& req) {
  if (!accept_cmd_sn(req.immediate, req.cmd_sn)) return;
  LogoutResponse r;
  r.itt = req.itt;
  // Closing the session or this connection is the same with one connection per session;
  // removing it for recovery needs ErrorRecoveryLevel 2.
  r.response = req.reason == 2 ? 2 : 0;
  r.stat_sn = next_stat_sn();
  r.exp_cmd_sn = exp_cmd_sn_;
  r.max_cmd_sn = max_cmd_sn();
  draining_ = req.reason != 2;
  send_pdu(r, {}, nullptr, /*close_after=*/draining_);
}

void Connection::nop_out(const NopOut& req, std::span<const uint8_t> data) {
  if (!accept_cmd_sn(req.immediate, req.cmd_sn)) return;
  if (req.itt == kReservedTag) return;  // an answer to a NOP-In of ours, or a bare CmdSN update
  NopIn r;
  r.lun = req.lun;
  r.itt = req.itt;
  r.stat_sn = next_stat_sn();
  r.exp_cmd_sn = exp_cmd_sn_;
  r.max_cmd_sn = max_cmd_sn();
  const size_t n = std::min<size_t>(data.size(), params_.initiator_max_recv_data_segment_length);
  send_pdu(r, data.first(n));
}

}  // namespace sluice::iscsi::detail
