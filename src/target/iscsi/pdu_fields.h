// The BHS layout of every opcode (RFC 7143 section 11), written once as a list of fields at
// their offsets and walked by both the encoder and the decoder of pdu.cc, so that the two
// cannot disagree. Internal to the codec.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "target/iscsi/pdu.h"

namespace sluice::iscsi::layout {

constexpr size_t kOffFlags = 1, kOffAhsLen = 4, kOffDataLen = 5, kOffLun = 8, kOffItt = 16;
constexpr uint8_t kAhsExtendedCdb = 1, kAhsBidiReadLength = 2;

// Walks fields: kEncode writes them into a zeroed BHS, otherwise reads them out of one.
template <bool kEncode>
class Fields {
 public:
  using Byte = std::conditional_t<kEncode, uint8_t, const uint8_t>;
  explicit Fields(Byte* b) : b_(b) {}

  template <typename T>
  void be(size_t off, T& v) {
    if constexpr (kEncode) {
      for (size_t i = 0; i < sizeof(T); ++i) b_[off + i] = static_cast<uint8_t>(v >> (8 * (sizeof(T) - 1 - i)));
    } else {
      v = 0;
      for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | b_[off + i]);
    }
  }
  void flag(size_t off, uint8_t mask, bool& v) {
    if constexpr (kEncode) {
      if (v) b_[off] |= mask;
    } else {
      v = (b_[off] & mask) != 0;
    }
  }
  // A field of the bits in `mask`, as a number from 0.
  void bits(size_t off, uint8_t mask, uint8_t& v) {
    const int shift = std::countr_zero(mask);
    if constexpr (kEncode) {
      b_[off] |= static_cast<uint8_t>((v << shift) & mask);
    } else {
      v = static_cast<uint8_t>((b_[off] & mask) >> shift);
    }
  }
  void bytes(size_t off, uint8_t* p, size_t n) {
    if constexpr (kEncode) {
      std::memcpy(b_ + off, p, n);
    } else {
      std::memcpy(p, b_ + off, n);
    }
  }

 private:
  Byte* b_;
};

// The response-side sequence numbers at 24, 28, 32, common to most target PDUs.
template <typename F, typename H>
void status_sns(F& f, H& h) {
  f.be(24, h.stat_sn);
  f.be(28, h.exp_cmd_sn);
  f.be(32, h.max_cmd_sn);
}

template <typename F>
void fields(F& f, NopOut& h) {
  f.flag(0, kImmediate, h.immediate);
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  f.be(20, h.ttt);
  f.be(24, h.cmd_sn);
  f.be(28, h.exp_stat_sn);
}
template <typename F>
void fields(F& f, ScsiCommand& h) {
  f.flag(0, kImmediate, h.immediate);
  f.flag(kOffFlags, kFlagFinal, h.final);
  f.flag(kOffFlags, kFlagRead, h.read);
  f.flag(kOffFlags, kFlagWrite, h.write);
  f.bits(kOffFlags, kAttrMask, h.attr);
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  f.be(20, h.expected_data_length);
  f.be(24, h.cmd_sn);
  f.be(28, h.exp_stat_sn);
  f.bytes(32, h.cdb, kCdbSize);
}
template <typename F>
void fields(F& f, TaskMgmtRequest& h) {
  f.flag(0, kImmediate, h.immediate);
  f.bits(kOffFlags, 0x7f, h.function);
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  f.be(20, h.referenced_task_tag);
  f.be(24, h.cmd_sn);
  f.be(28, h.exp_stat_sn);
  f.be(32, h.ref_cmd_sn);
  f.be(36, h.exp_data_sn);
}
template <typename F, typename H>
void login_common(F& f, H& h) {
  f.flag(kOffFlags, kFlagTransit, h.transit);
  f.flag(kOffFlags, kFlagContinue, h.cont);
  f.bits(kOffFlags, 0x0c, h.csg);
  f.bits(kOffFlags, 0x03, h.nsg);
  f.be(2, h.version_max);
  f.bytes(8, h.isid, sizeof h.isid);
  f.be(14, h.tsih);
  f.be(kOffItt, h.itt);
}
template <typename F>
void fields(F& f, LoginRequest& h) {
  login_common(f, h);
  f.be(3, h.version_min);
  f.be(20, h.cid);
  f.be(24, h.cmd_sn);
  f.be(28, h.exp_stat_sn);
}
template <typename F>
void fields(F& f, TextRequest& h) {
  f.flag(0, kImmediate, h.immediate);
  f.flag(kOffFlags, kFlagFinal, h.final);
  f.flag(kOffFlags, kFlagContinue, h.cont);
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  f.be(20, h.ttt);
  f.be(24, h.cmd_sn);
  f.be(28, h.exp_stat_sn);
}
template <typename F>
void fields(F& f, DataOut& h) {
  f.flag(kOffFlags, kFlagFinal, h.final);
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  f.be(20, h.ttt);
  f.be(28, h.exp_stat_sn);
  f.be(36, h.data_sn);
  f.be(40, h.buffer_offset);
}
template <typename F>
void fields(F& f, LogoutRequest& h) {
  f.flag(0, kImmediate, h.immediate);
  f.bits(kOffFlags, 0x7f, h.reason);
  f.be(kOffItt, h.itt);
  f.be(20, h.cid);
  f.be(24, h.cmd_sn);
  f.be(28, h.exp_stat_sn);
}
template <typename F>
void fields(F& f, SnackRequest& h) {
  f.bits(kOffFlags, 0x0f, h.type);
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  f.be(20, h.ttt);
  f.be(28, h.exp_stat_sn);
  f.be(40, h.beg_run);
  f.be(44, h.run_length);
}
template <typename F>
void fields(F& f, NopIn& h) {
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  f.be(20, h.ttt);
  status_sns(f, h);
}
template <typename F>
void fields(F& f, ScsiResponse& h) {
  f.flag(kOffFlags, kFlagBidiOverflow, h.bidi_overflow);
  f.flag(kOffFlags, kFlagBidiUnderflow, h.bidi_underflow);
  f.flag(kOffFlags, kFlagOverflow, h.overflow);
  f.flag(kOffFlags, kFlagUnderflow, h.underflow);
  f.be(2, h.response);
  f.be(3, h.status);
  f.be(kOffItt, h.itt);
  f.be(20, h.snack_tag);
  status_sns(f, h);
  f.be(36, h.exp_data_sn);
  f.be(40, h.bidi_read_residual);
  f.be(44, h.residual);
}
template <typename F>
void fields(F& f, TaskMgmtResponse& h) {
  f.be(2, h.response);
  f.be(kOffItt, h.itt);
  status_sns(f, h);
}
template <typename F>
void fields(F& f, LoginResponse& h) {
  login_common(f, h);
  f.be(3, h.version_active);
  status_sns(f, h);
  f.be(36, h.status_class);
  f.be(37, h.status_detail);
}
template <typename F>
void fields(F& f, TextResponse& h) {
  f.flag(kOffFlags, kFlagFinal, h.final);
  f.flag(kOffFlags, kFlagContinue, h.cont);
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  f.be(20, h.ttt);
  status_sns(f, h);
}
template <typename F>
void fields(F& f, DataIn& h) {
  f.flag(kOffFlags, kFlagFinal, h.final);
  f.flag(kOffFlags, kFlagAck, h.ack);
  f.flag(kOffFlags, kFlagOverflow, h.overflow);
  f.flag(kOffFlags, kFlagUnderflow, h.underflow);
  f.flag(kOffFlags, kFlagStatus, h.has_status);
  f.be(3, h.status);
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  f.be(20, h.ttt);
  status_sns(f, h);
  f.be(36, h.data_sn);
  f.be(40, h.buffer_offset);
  f.be(44, h.residual);
}
template <typename F>
void fields(F& f, LogoutResponse& h) {
  f.be(2, h.response);
  f.be(kOffItt, h.itt);
  status_sns(f, h);
  f.be(40, h.time2wait);
  f.be(42, h.time2retain);
}
template <typename F>
void fields(F& f, R2t& h) {
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  f.be(20, h.ttt);
  status_sns(f, h);
  f.be(36, h.r2t_sn);
  f.be(40, h.buffer_offset);
  f.be(44, h.desired_length);
}
template <typename F>
void fields(F& f, AsyncMessage& h) {
  f.be(kOffLun, h.lun);
  f.be(kOffItt, h.itt);
  status_sns(f, h);
  f.be(36, h.async_event);
  f.be(37, h.async_vcode);
  f.be(38, h.parameter1);
  f.be(40, h.parameter2);
  f.be(42, h.parameter3);
}
template <typename F>
void fields(F& f, Reject& h) {
  uint8_t reason = uint8_t(h.reason);
  f.be(2, reason);
  h.reason = RejectReason(reason);
  f.be(kOffItt, h.itt);
  status_sns(f, h);
  f.be(36, h.data_sn);
}

}  // namespace sluice::iscsi::layout
