// Sense data (SPC-4 4.5): the sense keys and additional sense codes this layer reports, and
// the two formats it writes them in. Which format a LUN uses is the control mode page's
// D_SENSE bit (mode_pages.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::scsi {

namespace sense_key {
inline constexpr uint8_t kNoSense = 0x0;
inline constexpr uint8_t kNotReady = 0x2;
inline constexpr uint8_t kMediumError = 0x3;
inline constexpr uint8_t kHardwareError = 0x4;
inline constexpr uint8_t kIllegalRequest = 0x5;
inline constexpr uint8_t kUnitAttention = 0x6;
inline constexpr uint8_t kDataProtect = 0x7;
inline constexpr uint8_t kAbortedCommand = 0xb;
inline constexpr uint8_t kMiscompare = 0xe;
}  // namespace sense_key

// Additional sense code and qualifier, as one value: ASC << 8 | ASCQ.
namespace asc {
inline constexpr uint16_t kNoAdditionalSense = 0x0000;
inline constexpr uint16_t kNotReadyInitCommandRequired = 0x0402;
inline constexpr uint16_t kWriteError = 0x0c00;
inline constexpr uint16_t kUnrecoveredReadError = 0x1100;
inline constexpr uint16_t kParameterListLengthError = 0x1a00;
inline constexpr uint16_t kMiscompareDuringVerify = 0x1d00;
inline constexpr uint16_t kInvalidOpcode = 0x2000;
inline constexpr uint16_t kLbaOutOfRange = 0x2100;
inline constexpr uint16_t kInvalidFieldInCdb = 0x2400;
inline constexpr uint16_t kLunNotSupported = 0x2500;
inline constexpr uint16_t kInvalidFieldInParameterList = 0x2600;
inline constexpr uint16_t kWriteProtected = 0x2700;
inline constexpr uint16_t kPowerOnReset = 0x2900;
inline constexpr uint16_t kModeParametersChanged = 0x2a01;
inline constexpr uint16_t kReservationsPreempted = 0x2a03;
inline constexpr uint16_t kReservationsReleased = 0x2a04;
inline constexpr uint16_t kRegistrationsPreempted = 0x2a05;
inline constexpr uint16_t kInvalidReleaseOfPersistentReservation = 0x2604;
inline constexpr uint16_t kCapacityDataChanged = 0x2a09;
inline constexpr uint16_t kSavingParametersNotSupported = 0x3900;
inline constexpr uint16_t kMediumRemovalPrevented = 0x5302;
inline constexpr uint16_t kInternalTargetFailure = 0x4400;
inline constexpr uint16_t kLogicalUnitFailure = 0x3e01;
inline constexpr uint16_t kLunCommunicationFailure = 0x0800;
}  // namespace asc

struct SenseData {
  uint8_t key = sense_key::kNoSense;
  uint16_t asc = asc::kNoAdditionalSense;
  // INFORMATION: the LBA of an error, or a miscompare's byte offset.
  bool has_information = false;
  uint64_t information = 0;
  // SENSE-KEY SPECIFIC field pointer for INVALID FIELD IN CDB / PARAMETER LIST: the byte and
  // bit (-1: the whole byte) of the offending field. field < 0: no pointer.
  int field = -1;
  int bit = -1;
  bool in_cdb = true;  // C/D: the field is in the CDB (else in the parameter data)
};

inline SenseData invalid_cdb_field(int field, int bit = -1) {
  return {.key = sense_key::kIllegalRequest, .asc = asc::kInvalidFieldInCdb, .field = field, .bit = bit};
}
inline SenseData invalid_param_field(int field, int bit = -1) {
  return {.key = sense_key::kIllegalRequest,
          .asc = asc::kInvalidFieldInParameterList,
          .field = field,
          .bit = bit,
          .in_cdb = false};
}
inline SenseData illegal(uint16_t code) { return {.key = sense_key::kIllegalRequest, .asc = code}; }

// Fixed format (response code 70h) is 18 bytes; descriptor format (72h) carries an
// information descriptor and a sense-key-specific descriptor when there is something to say.
inline constexpr size_t kFixedSenseLength = 18;
// Writes the sense into out (at least 32 bytes); returns its length.
size_t build_sense(const SenseData& s, bool descriptor, uint8_t* out);

}  // namespace sluice::scsi
