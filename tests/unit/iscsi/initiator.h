// A small blocking iSCSI initiator for the server tests, built on the codec: login (Discovery
// or Normal, digests and burst keys as asked, one-way CHAP), Text, NOP, Logout, task
// management; SCSI commands are in initiator_io.h. Every socket call is bounded by a
// receive/send timeout, so a server that hangs fails the test instead of stalling it.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "loopback_socket.h"
#include "target/iscsi/chap.h"
#include "target/iscsi/pdu.h"
#include "target/iscsi/pdu_reader.h"
#include "target/iscsi/text_keys.h"

namespace sluice::iscsi::testing {

struct LoginOptions {
  std::string target;  // empty: a Discovery session
  std::string initiator = "iqn.2026-12.io.sluice:test-initiator";
  bool digests = false;
  bool initial_r2t = true;
  bool immediate_data = true;
  uint32_t first_burst = 65536;
  uint32_t max_burst = 262144;
  uint32_t max_recv = 8192;  // ours: the target's Data-In segments
  uint8_t isid_last = 1;
  std::string chap_name, chap_secret;  // set: authenticate with one-way CHAP
};

struct Received {
  Pdu pdu;
  std::vector<uint8_t> data;
};

class Initiator {
 public:
  Initiator() : reader_(Role::initiator, RxParams{}, 4u << 20) {}
  ~Initiator() { close(); }
  Initiator(const Initiator&) = delete;
  Initiator& operator=(const Initiator&) = delete;

  bool connect(uint16_t port) {
    fd_ = sluice::testing::connect_loopback(port);
    return fd_ >= 0;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send_raw(const void* p, size_t n) { return sluice::testing::send_all(fd_, p, n); }
  bool send(const Header& h, std::span<const uint8_t> data = {}, const Ahs* ahs = nullptr) {
    std::vector<uint8_t> out;
    append_pdu(out, tx_, h, data, ahs);
    return send_raw(out.data(), out.size());
  }

  // The next PDU, or nullopt on timeout, close or a codec error.
  std::optional<Received> recv() {
    while (true) {
      while (off_ < have_) {
        off_ += reader_.feed(std::span<const uint8_t>(buf_.data() + off_, have_ - off_));
        switch (reader_.state()) {
          case PduReader::State::reading: break;
          case PduReader::State::need_buffer: reader_.use_internal_buffer(); break;
          case PduReader::State::pdu_ready: {
            Received r{reader_.pdu(), {}};
            auto d = reader_.data();
            r.data.assign(d.begin(), d.end());
            if (std::holds_alternative<ScsiResponse>(r.pdu.header) || std::holds_alternative<NopIn>(r.pdu.header))
              note_stat(r.pdu);
            return r;
          }
          default: return std::nullopt;
        }
      }
      off_ = have_ = 0;
      ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), 0);
      if (n <= 0) return std::nullopt;
      have_ = size_t(n);
    }
  }
  // Whether the target closed the connection (EOF within the receive timeout).
  bool closed_by_peer() {
    uint8_t b;
    return ::recv(fd_, &b, 1, 0) == 0;
  }

  // Runs the whole login; false (and `status` set) if it fails.
  bool login(const LoginOptions& o) {
    opts_ = o;
    std::string text;
    append_key(text, "InitiatorName", o.initiator);
    append_key(text, "SessionType", o.target.empty() ? "Discovery" : "Normal");
    if (!o.target.empty()) append_key(text, "TargetName", o.target);
    append_key(text, "AuthMethod", o.chap_secret.empty() ? "None" : "CHAP,None");
    auto r = login_step(0, 1, text, o.chap_secret.empty());
    if (!r) return false;
    if (!o.chap_secret.empty() && !chap(o)) return false;
    text.clear();
    append_key(text, "HeaderDigest", o.digests ? "CRC32C" : "None");
    append_key(text, "DataDigest", o.digests ? "CRC32C" : "None");
    append_key(text, "MaxRecvDataSegmentLength", std::to_string(o.max_recv));
    if (!o.target.empty()) {
      append_key(text, "InitialR2T", o.initial_r2t ? "Yes" : "No");
      append_key(text, "ImmediateData", o.immediate_data ? "Yes" : "No");
      append_key(text, "FirstBurstLength", std::to_string(o.first_burst));
      append_key(text, "MaxBurstLength", std::to_string(o.max_burst));
    }
    for (int round = 0; round < 4; ++round) {
      r = login_step(1, 3, text);
      if (!r) return false;
      const auto& resp = std::get<LoginResponse>(r->pdu.header);
      if (resp.transit && resp.nsg == 3) {
        tsih = resp.tsih;
        RxParams rx;
        rx.header_digest = rx.data_digest = o.digests;
        rx.max_recv_data_segment_length = o.max_recv;
        reader_.set_params(rx);
        tx_.header_digest = tx_.data_digest = o.digests;
        return true;
      }
      text.clear();
    }
    return false;
  }

  // One-way CHAP after AuthMethod=CHAP was chosen: CHAP_A, then CHAP_N and CHAP_R.
  bool chap(const LoginOptions& o) {
    if (agreed["AuthMethod"] != "CHAP") return false;
    std::string text;
    append_key(text, "CHAP_A", "5");
    if (!login_step(0, 1, text, false)) return false;
    auto challenge = decode_binary(agreed["CHAP_C"], kMaxChapChallenge);
    if (!challenge) return false;
    const ChapDigest d = chap_response(uint8_t(std::stoul(agreed["CHAP_I"])), o.chap_secret, *challenge);
    text.clear();
    append_key(text, "CHAP_N", o.chap_name);
    append_key(text, "CHAP_R", encode_hex(d));
    auto r = login_step(0, 1, text, true);
    return r && std::get<LoginResponse>(r->pdu.header).transit;
  }

  std::optional<Received> login_step(uint8_t csg, uint8_t nsg, const std::string& text, bool transit = true) {
    LoginRequest q;
    q.transit = transit;
    q.csg = csg;
    q.nsg = nsg;
    q.isid[0] = 0x80;
    q.isid[5] = opts_.isid_last;
    q.itt = itt_;
    q.cmd_sn = cmd_sn_;
    q.exp_stat_sn = exp_stat_sn_;
    if (!send(q, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size())))
      return std::nullopt;
    auto r = recv();
    if (!r || !std::holds_alternative<LoginResponse>(r->pdu.header)) return std::nullopt;
    const auto& resp = std::get<LoginResponse>(r->pdu.header);
    exp_stat_sn_ = resp.stat_sn + 1;
    login_status = uint16_t(resp.status_class << 8 | resp.status_detail);
    if (resp.status_class != 0) return std::nullopt;
    auto keys = parse_text(r->data);
    if (keys.ok())
      for (auto& kv : keys.value()) agreed[kv.key] = kv.value;
    return r;
  }

  uint32_t number(const std::string& key, uint32_t fallback) const {
    auto it = agreed.find(key);
    if (it == agreed.end() || it->second.empty() || !std::isdigit(uint8_t(it->second[0]))) return fallback;
    return uint32_t(std::stoul(it->second));
  }
  bool yes(const std::string& key, bool fallback) const {
    auto it = agreed.find(key);
    return it == agreed.end() ? fallback : it->second == "Yes";
  }

  // Text request, whole answer (following continuations).
  std::optional<std::string> text_request(const std::string& text) {
    TextRequest q;
    q.itt = ++itt_;
    q.cmd_sn = cmd_sn_++;
    q.exp_stat_sn = exp_stat_sn_;
    std::string out;
    std::span<const uint8_t> data(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    for (int i = 0; i < 64; ++i) {
      if (!send(q, data)) return std::nullopt;
      auto r = recv();
      if (!r || !std::holds_alternative<TextResponse>(r->pdu.header)) return std::nullopt;
      const auto& resp = std::get<TextResponse>(r->pdu.header);
      exp_stat_sn_ = resp.stat_sn + 1;
      out.append(r->data.begin(), r->data.end());
      if (resp.final) return out;
      q.ttt = resp.ttt;
      q.cmd_sn = cmd_sn_++;
      data = {};
    }
    return std::nullopt;
  }

  std::optional<Received> nop(uint32_t itt, std::span<const uint8_t> ping) {
    NopOut n;
    n.immediate = true;
    n.itt = itt;
    n.cmd_sn = cmd_sn_;
    n.exp_stat_sn = exp_stat_sn_;
    if (!send(n, ping)) return std::nullopt;
    if (itt == kReservedTag) return Received{};
    return recv();
  }

  std::optional<LogoutResponse> logout() {
    LogoutRequest q;
    q.immediate = true;
    q.itt = ++itt_;
    q.cmd_sn = cmd_sn_;
    q.exp_stat_sn = exp_stat_sn_;
    if (!send(q)) return std::nullopt;
    auto r = recv();
    if (!r || !std::holds_alternative<LogoutResponse>(r->pdu.header)) return std::nullopt;
    return std::get<LogoutResponse>(r->pdu.header);
  }

  std::optional<TaskMgmtResponse> task_mgmt(uint8_t function, uint64_t lun, uint32_t ref_itt) {
    TaskMgmtRequest q;
    q.function = function;
    q.lun = lun;
    q.itt = ++itt_;
    q.referenced_task_tag = ref_itt;
    q.cmd_sn = cmd_sn_;
    q.exp_stat_sn = exp_stat_sn_;
    if (!send(q)) return std::nullopt;
    auto r = recv();
    if (!r || !std::holds_alternative<TaskMgmtResponse>(r->pdu.header)) return std::nullopt;
    return std::get<TaskMgmtResponse>(r->pdu.header);
  }

  std::map<std::string, std::string> agreed;  // the target's answers during login
  uint16_t tsih = 0;
  uint16_t login_status = 0;
  uint32_t cmd_sn() const { return cmd_sn_; }
  uint32_t take_cmd_sn() { return cmd_sn_++; }
  uint32_t next_itt() { return ++itt_; }
  void set_exp_stat_sn(uint32_t v) { exp_stat_sn_ = v; }
  uint32_t exp_stat_sn() const { return exp_stat_sn_; }
  TxParams tx() const { return tx_; }

 private:
  void note_stat(const Pdu& p) {
    if (auto* s = std::get_if<ScsiResponse>(&p.header)) exp_stat_sn_ = s->stat_sn + 1;
    // A target's ping (ITT 0xffffffff) carries the current StatSN without taking it.
    if (auto* n = std::get_if<NopIn>(&p.header); n != nullptr && n->itt != kReservedTag) exp_stat_sn_ = n->stat_sn + 1;
  }

  int fd_ = -1;
  PduReader reader_;
  TxParams tx_;
  LoginOptions opts_;
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(256 << 10);
  size_t off_ = 0, have_ = 0;
  uint32_t itt_ = 1, cmd_sn_ = 1, exp_stat_sn_ = 0;
};

}  // namespace sluice::iscsi::testing
