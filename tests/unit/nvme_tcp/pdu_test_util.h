// What the NVMe/TCP codec tests share: whole PDUs as byte vectors (header from the builders,
// then data and its digest as a sender would gather them) and a receive loop that feeds a
// stream to a PduReader in chosen chunk sizes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "nvme/tcp_pdu.h"
#include "nvme/tcp_pdu_reader.h"

namespace sluice::nvme::tcp::testing {

using Bytes = std::vector<uint8_t>;

inline Bytes pattern(size_t n, uint8_t seed = 1) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

// A built header of `len` bytes followed by `data` and, if data digests are on, its digest.
inline Bytes with_data(const uint8_t* header, size_t len, const Bytes& data, bool ddgst) {
  Bytes out(header, header + len);
  out.insert(out.end(), data.begin(), data.end());
  if (ddgst && !data.empty()) {
    uint8_t d[kDigestSize];
    put_digest(d, data_digest(data));
    out.insert(out.end(), d, d + kDigestSize);
  }
  return out;
}

inline Bytes ic_req_pdu(const IcReq& r = {}) {
  uint8_t b[kMaxBuiltSize];
  return Bytes(b, b + build_ic_req(b, r));
}
inline Bytes ic_resp_pdu(const IcResp& r = {}) {
  uint8_t b[kMaxBuiltSize];
  return Bytes(b, b + build_ic_resp(b, r));
}
inline Bytes cmd_pdu(const TxParams& tx, const spec::Sqe& sqe, const Bytes& data = {}) {
  uint8_t b[kMaxBuiltSize];
  const size_t n = build_capsule_cmd(b, tx, sqe, static_cast<uint32_t>(data.size()));
  return with_data(b, n, data, tx.data_digest);
}
inline Bytes resp_pdu(const TxParams& tx, const spec::Cqe& cqe) {
  uint8_t b[kMaxBuiltSize];
  return Bytes(b, b + build_capsule_resp(b, tx, cqe));
}
inline Bytes data_pdu(Role sender, const TxParams& tx, DataHeader h, const Bytes& data) {
  uint8_t b[kMaxBuiltSize];
  h.datal = static_cast<uint32_t>(data.size());
  const size_t n = build_data(b, sender, tx, h);
  return with_data(b, n, data, tx.data_digest);
}
inline Bytes r2t_pdu(const TxParams& tx, const R2t& r) {
  uint8_t b[kMaxBuiltSize];
  return Bytes(b, b + build_r2t(b, tx, r));
}
inline Bytes term_pdu(Role sender, Fes fes, uint32_t fei, const Bytes& offending) {
  uint8_t b[kMaxBuiltSize];
  return Bytes(b, b + build_term_req(b, sender, fes, fei, offending));
}

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// One PDU as the receive loop saw it end.
struct Received {
  PduReader::State state;
  Pdu pdu;
  Bytes data;  // where set_data_buffer() pointed (or the TermReq's data)
  PduError error;
};

// Feeds `stream` in chunks of `chunk(i)` bytes (i counts feed calls), giving each PDU with
// data a fresh buffer (or, with `recv_into_window`, copying straight into data_window() the
// way recv() would). Stops at the end of the stream or at `failed`.
inline std::vector<Received> receive(PduReader& rx, const Bytes& stream, const std::function<size_t(size_t)>& chunk,
                                     bool recv_into_window = false) {
  std::vector<Received> got;
  std::unique_ptr<Bytes> buffer;
  size_t at = 0, calls = 0;
  auto finish = [&](PduReader::State s) {
    Received r{s, rx.pdu(), buffer ? *buffer : Bytes{}, rx.error()};
    if (r.pdu.type == PduType::h2c_term_req || r.pdu.type == PduType::c2h_term_req)
      r.data.assign(rx.term_data().begin(), rx.term_data().end());
    got.push_back(std::move(r));
    buffer.reset();
  };
  while (at < stream.size()) {
    const std::span<uint8_t> window = rx.data_window();
    if (recv_into_window && !window.empty()) {
      const size_t n = std::min({window.size(), stream.size() - at, std::max<size_t>(1, chunk(calls++))});
      std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(at), n, window.begin());
      rx.data_received(n);
      at += n;
    } else {
      const size_t n = std::min(stream.size() - at, std::max<size_t>(1, chunk(calls++)));
      at += rx.feed(std::span<const uint8_t>(stream.data() + at, n));
    }
    switch (rx.state()) {
      case PduReader::State::reading: break;
      case PduReader::State::need_buffer:
        buffer = std::make_unique<Bytes>(rx.pdu().data_length);
        if (!rx.set_data_buffer(*buffer)) return got;
        break;
      case PduReader::State::pdu_ready:
      case PduReader::State::data_digest_error:
        finish(rx.state());
        if (at == stream.size()) return got;
        // the next feed() starts the next PDU; feed nothing more to see `failed` after a TermReq
        if (rx.feed({}) == 0 && rx.state() == PduReader::State::failed) {
          got.push_back({rx.state(), rx.pdu(), {}, rx.error()});
          return got;
        }
        break;
      case PduReader::State::failed: got.push_back({rx.state(), rx.pdu(), {}, rx.error()}); return got;
    }
  }
  return got;
}

inline std::vector<Received> receive_whole(PduReader& rx, const Bytes& stream) {
  return receive(rx, stream, [&](size_t) { return stream.size(); });
}

}  // namespace sluice::nvme::tcp::testing
