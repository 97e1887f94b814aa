// Task management (RFC 7143 11.5), on the connection's reactor.
#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "target/iscsi/connection.h"

namespace sluice::iscsi::detail {

// Task management (RFC 7143 11.5): ABORT TASK, LUN RESET and TARGET WARM RESET; the others
// are answered "not supported". A task already at the SCSI layer cannot be pulled back: it
// runs to completion, its response is dropped, and the TMF response waits for it.
void Connection::task_mgmt(const TaskMgmtRequest& req) {
  if (!accept_cmd_sn(req.immediate, req.cmd_sn)) return;
  constexpr uint8_t kComplete = 0, kNoTask = 1, kNoLun = 2, kNotSupported = 5;
  const auto lun_of = [](const Command* c) { return c->lun; };
  auto pending = std::make_unique<PendingTmf>();
  auto abort_if = [&](auto pred) {
    std::vector<Command*> hit;
    for (auto& [itt, c] : commands_)
      if (pred(c)) hit.push_back(c);
    for (Command* c : hit) {
      c->aborted = true;
      if (!c->executing) {
        finish(c);
      } else if (c->tmf == nullptr) {
        c->tmf = pending.get();
        ++pending->waiting;
      }
    }
  };
  uint8_t response = kComplete;
  const std::optional<uint16_t> lun = lun_to_index(req.lun);
  switch (req.function) {
    case 1: {  // ABORT TASK
      Command* c = find_command(req.referenced_task_tag);
      if (c == nullptr) {
        response = kNoTask;
        break;
      }
      abort_if([&](const Command* x) { return x == c; });
      break;
    }
    case 2:  // ABORT TASK SET
    case 3:  // CLEAR TASK SET
      abort_if([&](const Command* x) { return lun_of(x) == req.lun; });
      break;
    case 5:  // LOGICAL UNIT RESET
      if (!lun || device_ == nullptr) {
        response = kNoLun;
        break;
      }
      abort_if([&](const Command* x) { return lun_of(x) == req.lun; });
      // SAM-5 6.3.3: a unit attention for every I_T nexus, the one that asked included
      // (multipath initiators look for it on each path: libiscsi's MultipathIO.Reset).
      device_->reset_lun(*lun);
      break;
    case 6:  // TARGET WARM RESET
      abort_if([](const Command*) { return true; });
      if (device_ != nullptr) device_->reset();
      break;
    default: response = kNotSupported; break;
  }
  if (pending->waiting == 0) return tmf_response(req.itt, response);
  pending->itt = req.itt;
  pending->response = response;
  tmfs_.push_back(std::move(pending));
}

void Connection::tmf_task_ended(Command* c) {
  PendingTmf* p = c->tmf;
  c->tmf = nullptr;
  if (--p->waiting > 0) return;
  if (!closing_) tmf_response(p->itt, p->response);
  tmfs_.erase(std::find_if(tmfs_.begin(), tmfs_.end(), [p](const auto& t) { return t.get() == p; }));
}

void Connection::tmf_response(uint32_t itt, uint8_t response) {
  TaskMgmtResponse r;
  r.response = response;
  r.itt = itt;
  r.stat_sn = next_stat_sn();
  r.exp_cmd_sn = exp_cmd_sn_;
  r.max_cmd_sn = max_cmd_sn();
  send_pdu(r, {});
}

}  // namespace sluice::iscsi::detail
