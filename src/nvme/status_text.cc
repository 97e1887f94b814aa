// Completion statuses decoded into words, and mapped onto Sluice's error codes.
#include <fmt/format.h>

#include "nvme/nvme.h"

namespace sluice::nvme {
namespace {

const char* generic_text(uint8_t sc) {
  switch (sc) {
    case 0x00: return "success";
    case 0x01: return "invalid command opcode";
    case 0x02: return "invalid field in command";
    case 0x03: return "command ID conflict";
    case 0x04: return "data transfer error";
    case 0x05: return "commands aborted due to power loss notification";
    case 0x06: return "internal error";
    case 0x07: return "command abort requested";
    case 0x08: return "command aborted due to SQ deletion";
    case 0x09: return "command aborted due to failed fused command";
    case 0x0a: return "command aborted due to missing fused command";
    case 0x0b: return "invalid namespace or format";
    case 0x0c: return "command sequence error";
    case 0x0d: return "invalid SGL segment descriptor";
    case 0x0e: return "invalid number of SGL descriptors";
    case 0x0f: return "data SGL length invalid";
    case 0x13: return "PRP offset invalid";
    case 0x15: return "operation denied";
    case 0x80: return "LBA out of range";
    case 0x81: return "capacity exceeded";
    case 0x82: return "namespace not ready";
    case 0x83: return "reservation conflict";
    case 0x84: return "format in progress";
    default: return nullptr;
  }
}

const char* command_specific_text(uint8_t sc) {
  switch (sc) {
    case 0x00: return "completion queue invalid";
    case 0x01: return "invalid queue identifier";
    case 0x02: return "invalid queue size";
    case 0x03: return "abort command limit exceeded";
    case 0x05: return "asynchronous event request limit exceeded";
    case 0x06: return "invalid firmware slot";
    case 0x07: return "invalid firmware image";
    case 0x08: return "invalid interrupt vector";
    case 0x09: return "invalid log page";
    case 0x0a: return "invalid format";
    case 0x0c: return "invalid queue deletion";
    case 0x0d: return "feature identifier not saveable";
    case 0x0e: return "feature not changeable";
    case 0x80: return "conflicting attributes";
    case 0x81: return "invalid protection information";
    case 0x82: return "attempted write to read only range";
    default: return nullptr;
  }
}

const char* media_text(uint8_t sc) {
  switch (sc) {
    case 0x80: return "write fault";
    case 0x81: return "unrecovered read error";
    case 0x82: return "end-to-end guard check error";
    case 0x83: return "end-to-end application tag check error";
    case 0x84: return "end-to-end reference tag check error";
    case 0x85: return "compare failure";
    case 0x86: return "access denied";
    case 0x87: return "deallocated or unwritten logical block";
    default: return nullptr;
  }
}

}  // namespace

std::string status_text(uint16_t status) {
  const uint8_t sct = spec::status_sct(status), sc = spec::status_sc(status);
  const char* text = nullptr;
  switch (sct) {
    case spec::kSctGeneric: text = generic_text(sc); break;
    case spec::kSctCommandSpecific: text = command_specific_text(sc); break;
    case spec::kSctMedia: text = media_text(sc); break;
    case 3: text = "path related status"; break;
    case 7: text = "vendor specific status"; break;
    default: break;
  }
  std::string out = fmt::format("{} (SCT {} SC {:#04x})", text ? text : "unknown status", sct, sc);
  if (spec::status_dnr(status)) out += ", do not retry";
  return out;
}

Errc Completion::errc() const {
  if (reset_aborted) return Errc::aborted;
  if (status == 0) return Errc::ok;
  const uint8_t sct = this->sct(), sc = this->sc();
  if (sct == spec::kSctGeneric) {
    switch (sc) {
      case spec::kScLbaOutOfRange:
      case 0x81:
        return Errc::out_of_range;
      case spec::kScInvalidOpcode:
      case spec::kScInvalidField:
      case spec::kScInvalidNamespace:
      case spec::kScPrpOffsetInvalid:
        return Errc::invalid_argument;
      case spec::kScAbortRequested:
      case spec::kScAbortedSqDeletion:
      case 0x05:
        return Errc::aborted;
      default:
        return Errc::io_error;
    }
  }
  if (sct == spec::kSctCommandSpecific) return Errc::invalid_argument;
  return Errc::io_error;
}

Status completion_status(const Completion& c, std::string_view what) {
  if (c.ok()) return Status::Ok();
  if (c.reset_aborted) return Status(Errc::aborted, fmt::format("{}: failed by a controller reset", what));
  std::string text = status_text(c.status);
  if (c.timed_out) text = "timed out, then " + text;
  return Status(c.errc(), fmt::format("{}: {}", what, text));
}

}  // namespace sluice::nvme
