// A small blocking NVMe/TCP host for the tests, built on the PDU codec: ICReq, command
// capsules (data in the capsule, or sent as H2CData after the target's R2T), C2HData and
// CapsuleResp back. Every socket call is bounded by a timeout, so a target that hangs fails
// the test instead of hanging it.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "loopback_socket.h"
#include "nvme/nvme_spec.h"
#include "nvme/tcp_pdu.h"
#include "nvme/tcp_pdu_reader.h"

namespace sluice::nvmf::testing {

namespace pdu = sluice::nvme::tcp;
namespace hsp = sluice::nvme::spec;

class TcpHost {
 public:
  TcpHost() = default;
  ~TcpHost() { close(); }
  TcpHost(const TcpHost&) = delete;
  TcpHost& operator=(const TcpHost&) = delete;

  bool connect(uint16_t port) {
    fd_ = sluice::testing::connect_loopback(port);
    return fd_ >= 0;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send_all(const void* data, size_t len) { return sluice::testing::send_all(fd_, data, len); }
  // True when the target closed the connection within the timeout.
  bool sees_eof() { return sluice::testing::sees_eof(fd_); }

  // The IC exchange; false if the target's ICResp is missing or does not agree.
  bool ic(bool header_digest, bool data_digest, uint8_t hpda = 0) {
    pdu::IcReq req;
    req.hpda = hpda;
    req.digest = (header_digest ? pdu::kDigestHeader : 0) | (data_digest ? pdu::kDigestData : 0);
    uint8_t b[pdu::kMaxBuiltSize];
    if (!send_all(b, pdu::build_ic_req(b, req))) return false;
    if (!next_pdu() || rx_.pdu().type != pdu::PduType::ic_resp) return false;
    resp_ = rx_.pdu().ic_resp;
    pdu::RxParams p = rx_.params();
    p.header_digest = header_digest;
    p.data_digest = data_digest;
    p.pda = hpda;
    rx_.set_params(p);
    tx_.header_digest = header_digest;
    tx_.data_digest = data_digest;
    tx_.pda = resp_.cpda;
    return resp_.digest == req.digest;
  }
  const pdu::IcResp& ic_resp() const { return resp_; }

  struct Completion {
    hsp::Cqe cqe{};
    std::vector<uint8_t> data;  // C2H data received
    uint32_t r2ts = 0;          // R2Ts the target sent
    bool status_in_data = false;  // the last C2HData had SUCCESS: no CapsuleResp came
  };
  // One command. `out`: data to the controller (in the capsule when in_capsule, else after
  // an R2T, in H2CData PDUs of at most MAXH2CDATA); `in_len`: data expected back.
  // `corrupt_ddgst` flips the data digest of the first data PDU sent.
  std::optional<Completion> command(hsp::Sqe sqe, std::span<const uint8_t> out = {}, uint32_t in_len = 0,
                                    bool in_capsule = true, bool corrupt_ddgst = false) {
    sqe.cid = ++cid_;
    sqe.flags = 0x40;  // PSDT: SGL
    const uint32_t len = out.empty() ? in_len : static_cast<uint32_t>(out.size());
    const bool capsule_data = !out.empty() && in_capsule;
    sqe.prp1 = 0;
    sqe.prp2 = uint64_t{len} | (uint64_t{capsule_data ? 0x01u : 0x5au} << 56);
    uint8_t b[pdu::kMaxBuiltSize];
    if (!send_all(b, pdu::build_capsule_cmd(b, tx_, sqe, capsule_data ? len : 0))) return std::nullopt;
    if (capsule_data && !send_data(out, corrupt_ddgst)) return std::nullopt;
    Completion c;
    c.data.resize(in_len);
    for (int i = 0; i < 64; ++i) {
      if (!next_pdu(&c)) return std::nullopt;
      const pdu::Pdu& pdu = rx_.pdu();
      if (pdu.type == pdu::PduType::r2t) {
        ++c.r2ts;
        if (pdu.r2t.cccid != sqe.cid || pdu.r2t.r2to + pdu.r2t.r2tl > out.size()) return std::nullopt;
        for (uint32_t at = pdu.r2t.r2to; at < pdu.r2t.r2to + pdu.r2t.r2tl;) {
          const uint32_t n = std::min(resp_.maxh2cdata, pdu.r2t.r2to + pdu.r2t.r2tl - at);
          pdu::DataHeader h;
          h.cccid = sqe.cid;
          h.ttag = pdu.r2t.ttag;
          h.datao = at;
          h.datal = n;
          h.last = at + n == pdu.r2t.r2to + pdu.r2t.r2tl;
          if (!send_all(b, pdu::build_data(b, pdu::Role::host, tx_, h))) return std::nullopt;
          if (!send_data(out.subspan(at, n), corrupt_ddgst && at == 0)) return std::nullopt;
          at += n;
        }
      } else if (pdu.type == pdu::PduType::capsule_resp) {
        c.cqe = pdu.cqe;
        return c;
      } else if (pdu.type != pdu::PduType::c2h_data) {
        return std::nullopt;
      } else if (pdu.data.success) {
        // What the host makes of it (NVMe/TCP 1.0, 3.3.6.2): a completion with status 0.
        c.status_in_data = true;
        c.cqe = {};
        c.cqe.cid = sqe.cid;
        return c;
      }
    }
    return std::nullopt;
  }

  // Connect on this connection: qid 0 with a new controller (keep-alive timeout `kato_ms`,
  // 0: none), or qid > 0 joining `cntlid`; `cattr`: Connect's attributes (CATTR).
  std::optional<Completion> connect_queue(uint16_t qid, const std::string& subnqn, const std::string& hostnqn,
                                          uint16_t cntlid = hsp::connect::kNewController, uint32_t kato_ms = 0,
                                          uint8_t cattr = 0) {
    hsp::Sqe sqe{};
    sqe.opc = hsp::kFabricsOpcode;
    sqe.nsid = hsp::kFctypeConnect;
    sqe.cdw10 = uint32_t{qid} << 16;
    sqe.cdw11 = 31 | uint32_t{cattr} << 16;  // SQSIZE 32
    sqe.cdw12 = kato_ms;
    std::vector<uint8_t> data(hsp::connect::kDataSize);
    hsp::put<uint16_t>(data.data(), hsp::connect::kCntlid, cntlid);
    std::memcpy(data.data() + hsp::connect::kSubnqn, subnqn.data(), subnqn.size());
    std::memcpy(data.data() + hsp::connect::kHostnqn, hostnqn.data(), hostnqn.size());
    return command(sqe, data);
  }

  // The reader's state after the last PDU (failed: the target broke the protocol).
  pdu::PduReader& reader() { return rx_; }

 private:
  bool send_data(std::span<const uint8_t> data, bool corrupt) {
    if (!send_all(data.data(), data.size())) return false;
    if (!tx_.data_digest) return true;
    uint8_t d[pdu::kDigestSize];
    pdu::put_digest(d, pdu::data_digest(data) ^ (corrupt ? 1u : 0u));
    return send_all(d, sizeof(d));
  }
  // Reads until the next whole PDU; C2HData lands in c->data at its DATAO.
  bool next_pdu(Completion* c = nullptr) {
    for (;;) {
      while (off_ < len_) {
        off_ += rx_.feed({buf_ + off_, len_ - off_});
        switch (rx_.state()) {
          case pdu::PduReader::State::reading: break;
          case pdu::PduReader::State::need_buffer: {
            const pdu::Pdu& p = rx_.pdu();
            if (p.type == pdu::PduType::c2h_data && c != nullptr && p.data.datao + p.data.datal <= c->data.size()) {
              rx_.set_data_buffer({c->data.data() + p.data.datao, p.data.datal});
            } else {
              rx_.discard_data();
            }
            break;
          }
          case pdu::PduReader::State::pdu_ready: return true;
          case pdu::PduReader::State::data_digest_error:
          case pdu::PduReader::State::failed: return false;
        }
      }
      ssize_t n = ::recv(fd_, buf_, sizeof(buf_), 0);
      if (n <= 0) return false;
      off_ = 0;
      len_ = static_cast<size_t>(n);
    }
  }

  int fd_ = -1;
  pdu::PduReader rx_{pdu::Role::host, pdu::RxParams{}};
  pdu::TxParams tx_;
  pdu::IcResp resp_;
  uint16_t cid_ = 0;
  uint8_t buf_[64 << 10];
  size_t off_ = 0, len_ = 0;
};

}  // namespace sluice::nvmf::testing
