// Fabrics commands: Connect (a new controller on queue 0, an I/O queue joining one
// otherwise), Property Get/Set (the controller's registers), Disconnect.
#include <cstring>

#include "base/log.h"
#include "target/nvmf/nvmf_impl.h"

namespace sluice::nvmf {
namespace {

namespace cn = sp::connect;

uint16_t invalid_parameters() { return specific_status(sp::kScFabricsInvalidParameters); }

// An NQN field of the Connect data: NUL-terminated inside its 256 bytes, else empty.
std::string_view nqn_field(const uint8_t* data, size_t off) {
  const auto* p = reinterpret_cast<const char*>(data + off);
  const void* nul = std::memchr(p, '\0', cn::kNqnField);
  return nul == nullptr ? std::string_view{} : std::string_view(p, static_cast<const char*>(nul) - p);
}

uint64_t capabilities(const TargetOptions& o) {
  return uint64_t{o.max_queue_depth - 1u}  // MQES
         | uint64_t{1} << 16               // CQR: queues are contiguous
         | uint64_t{1} << 24               // TO: 500 ms to become ready (it is at once)
         | uint64_t{1} << 37;              // CSS: the NVM command set; MPSMIN = MPSMAX = 4 KiB
}

void connect(Target::State& target, Request* req) {
  const sp::Sqe& sqe = req->sqe;
  auto fail = [&](uint16_t status, uint32_t dw0 = 0) { QueuePair::Impl::finish(req, status, dw0); };
  if ((sqe.cdw10 & 0xffff) != 0) return fail(specific_status(sp::kScFabricsIncompatibleFormat));
  const uint16_t qid = static_cast<uint16_t>(sqe.cdw10 >> 16);
  const uint32_t sqsize = (sqe.cdw11 & 0xffff) + 1u;
  if (req->data == nullptr || req->length < cn::kDataSize)
    return fail(generic_status(sp::kScDataSglLengthInvalid, true));
  if (sqsize < 2 || sqsize > target.options.max_queue_depth)
    return fail(invalid_parameters(), cn::invalid_parameter(false, cn::kSqeSqsize));
  const auto* data = static_cast<const uint8_t*>(req->data);
  const std::string_view subnqn = nqn_field(data, cn::kSubnqn);
  const std::string_view hostnqn = nqn_field(data, cn::kHostnqn);
  const uint16_t cntlid = sp::get<uint16_t>(data, cn::kCntlid);
  Subsystem* s = target.find(subnqn);
  if (s == nullptr) {
    log::info("nvmf: connect to unknown subsystem '{}' from '{}'", subnqn, hostnqn);
    return fail(invalid_parameters(), cn::invalid_parameter(true, cn::kSubnqn));
  }
  if (hostnqn.empty() || !validate_nqn(hostnqn).ok())
    return fail(invalid_parameters(), cn::invalid_parameter(true, cn::kHostnqn));
  if (!s->host_allowed(hostnqn)) {
    log::info("nvmf: host '{}' is not allowed on '{}'", hostnqn, subnqn);
    return fail(specific_status(sp::kScFabricsInvalidHost), cn::invalid_parameter(true, cn::kHostnqn));
  }
  QueuePair::Impl& impl = QueuePair::Impl::of(req);
  ConnectResult& r = impl.connect;
  r.qid = qid;
  r.subnqn = s->nqn;
  r.sq_flow_control_disabled = (sqe.cdw11 >> 16) & cn::kCattrDisableSqFlowControl;
  if (qid == 0) {
    // Only the dynamic controller model: the host asks for "any" controller.
    if (cntlid != cn::kNewController) return fail(invalid_parameters(), cn::invalid_parameter(true, cn::kCntlid));
    const uint16_t id = s->allocate_cntlid();
    if (id == 0) return fail(specific_status(sp::kScFabricsControllerBusy));
    auto c = std::make_shared<Controller>();
    c->subsystem = s;
    c->cntlid = id;
    c->hostnqn = std::string(hostnqn);
    std::memcpy(c->hostid.data(), data + cn::kHostid, c->hostid.size());
    c->discovery = s->discovery;
    c->kato_ms = sqe.cdw12;
    c->last_keep_alive_ms = target.now_ms();
    c->queues.resize(s->discovery ? 1 : target.options.max_io_queues + 1u);
    c->queues[0] = impl.link;
    s->controllers.push_back(c);
    r.ctrlr = std::move(c);
    r.cntlid = id;
    return QueuePair::Impl::finish(req, 0, id);
  }
  if (s->discovery) return fail(invalid_parameters(), cn::invalid_parameter(false, cn::kSqeQid));
  std::shared_ptr<Controller> c = s->find_controller(cntlid);
  if (!c) return fail(invalid_parameters(), cn::invalid_parameter(true, cn::kCntlid));
  if (c->hostnqn != hostnqn) return fail(invalid_parameters(), cn::invalid_parameter(true, cn::kHostnqn));
  if (!(c->cc & sp::kCcEnable) || !(c->csts & sp::kCstsRdy))
    return fail(generic_status(sp::kScCommandSequenceError, true));
  const uint32_t granted = c->io_queues_granted ? c->io_queues_granted : target.options.max_io_queues;
  if (qid > granted || qid >= c->queues.size() || c->queues[qid])
    return fail(invalid_parameters(), cn::invalid_parameter(false, cn::kSqeQid));
  c->queues[qid] = impl.link;
  r.namespaces = s->namespaces;
  r.ctrlr = std::move(c);
  r.cntlid = cntlid;
  QueuePair::Impl::finish(req, 0, cntlid);
}

// Property Get/Set: 4- or 8-byte registers at the offsets of a PCIe controller's BAR0.
void property(Target::State& target, Request* req, bool set) {
  Controller* c = req->state.ctrlr;
  const sp::Sqe& sqe = req->sqe;
  const bool wide = (sqe.cdw10 & 7) == sp::kPropertySize8;
  const uint32_t offset = sqe.cdw11;
  const uint16_t invalid = invalid_parameters();
  const uint32_t bad_offset = cn::invalid_parameter(false, sp::kPropertySqeOffset);
  if (!set) {
    uint64_t value;
    switch (offset) {
      case sp::kRegCap: value = capabilities(target.options); break;
      case sp::kRegVs: value = sp::kVersion13; break;
      case sp::kRegCc: value = c->cc; break;
      case sp::kRegCsts: value = c->csts; break;
      default: return QueuePair::Impl::finish(req, invalid, bad_offset);
    }
    if (wide != (offset == sp::kRegCap)) return QueuePair::Impl::finish(req, invalid, cn::invalid_parameter(false, sp::kPropertySqeAttrib));
    req->cqe.dw1 = static_cast<uint32_t>(value >> 32);
    return QueuePair::Impl::finish(req, 0, static_cast<uint32_t>(value));
  }
  if (offset != sp::kRegCc || wide) return QueuePair::Impl::finish(req, invalid, bad_offset);
  const uint32_t old = c->cc, cc = sqe.cdw12;
  c->cc = cc;
  if (!(old & sp::kCcEnable) && (cc & sp::kCcEnable)) {
    c->csts = (c->csts & ~(sp::kCstsShstMask | sp::kCstsCfs)) | sp::kCstsRdy;  // ready at once
  } else if ((old & sp::kCcEnable) && !(cc & sp::kCcEnable)) {
    c->csts &= ~(sp::kCstsRdy | sp::kCstsShstMask);  // a controller reset
  }
  if ((cc & sp::kCcShnMask) && !(old & sp::kCcShnMask)) {
    // Shutdown: nothing is cached here (the bdevs complete writes durably or on FLUSH,
    // which the host sends first), so it is complete at once.
    c->csts = (c->csts & ~sp::kCstsShstMask) | sp::kCstsShstComplete;
  }
  QueuePair::Impl::finish(req, 0);
}

}  // namespace

void execute_fabrics(Target::State& target, Request* req) {
  switch (sp::fabrics_type(req->sqe)) {
    case sp::kFctypeConnect: return connect(target, req);
    case sp::kFctypePropertyGet: return property(target, req, false);
    case sp::kFctypePropertySet: return property(target, req, true);
    default: return QueuePair::Impl::finish(req, generic_status(sp::kScInvalidOpcode, true));
  }
}

void QueuePair::Impl::disconnect(Request* req) {
  // Completes, then the queue is gone: the transport sends the response and closes.
  qp.close();
  req->cqe.status = 0;
  complete(req);
}

}  // namespace sluice::nvmf
