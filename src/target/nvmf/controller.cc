// Controllers on the home reactor: asynchronous events, the error log, and the end of an
// association.
#include <algorithm>

#include "base/log.h"
#include "target/nvmf/nvmf_impl.h"
#include "thread/thread.h"

namespace sluice::nvmf {

void raise_event(Controller& c, uint32_t dw0) {
  if (c.aers.empty()) {
    c.pending_events.push_back(dw0);  // the next Asynchronous Event Request takes it
    return;
  }
  Request* aer = c.aers.front();
  c.aers.erase(c.aers.begin());
  QueuePair::Impl::finish(aer, 0, dw0);
}

void record_error(Controller& c, const sp::Sqe& sqe, uint16_t status, uint16_t sqid) {
  sp::ErrorLogEntry e{};
  e.error_count = ++c.error_count;
  e.sqid = sqid;
  e.cid = sqe.cid;
  e.status = status;
  e.param_location = 0xffff;
  const bool io = sqid != 0;
  e.nsid = sqe.opc == sp::kFabricsOpcode && !io ? 0 : sqe.nsid;
  if (io) e.lba = uint64_t{sqe.cdw11} << 32 | sqe.cdw10;
  c.errors.push_front(e);
  if (c.errors.size() > kErrorLogEntries) c.errors.pop_back();
}

void Target::State::end_association(const std::shared_ptr<Controller>& ctrlr) {
  if (Subsystem* s = ctrlr->subsystem) {
    auto& list = s->controllers;
    list.erase(std::remove(list.begin(), list.end(), ctrlr), list.end());
  }
  // From here the controller is gone: admin commands that still reach it are refused.
  ctrlr->subsystem = nullptr;
  // Outstanding AERs end with the association. A done() callback may submit another at once
  // (on this reactor), so they are taken out first.
  std::vector<Request*> aers = std::move(ctrlr->aers);
  ctrlr->aers.clear();
  for (Request* aer : aers) QueuePair::Impl::finish(aer, generic_status(sp::kScAbortedSqDeletion));
  // The other queues of the association are closed on their reactors; their transports
  // hear it (on_closed_by_target) and drop the connections.
  for (auto& link : ctrlr->queues) {
    if (!link) continue;
    Status st = thread::send_message(link->reactor, [link] {
      if (link->qp != nullptr) link->qp->impl().closed_by_target();
    });
    if (!st.ok()) log::warn("nvmf: closing a queue of controller {}: {}", ctrlr->cntlid, st.to_string());
  }
  ctrlr->queues.clear();
}

void Target::State::queue_closed(const std::shared_ptr<Controller>& ctrlr, uint16_t qid) {
  if (ctrlr->subsystem == nullptr) return;  // the association already ended
  if (qid == 0) {
    end_association(ctrlr);
    return;
  }
  if (qid < ctrlr->queues.size()) ctrlr->queues[qid].reset();
}

}  // namespace sluice::nvmf
