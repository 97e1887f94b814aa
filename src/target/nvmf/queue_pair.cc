// A queue pair on its reactor: the first Connect, the hop of fabrics and admin commands to
// the home reactor and of their completions back, the namespace channel records, close.
#include <algorithm>

#include "base/log.h"
#include "target/nvmf/nvmf_impl.h"
#include "thread/thread.h"

namespace sluice::nvmf {
namespace {

uint32_t this_reactor() {
  thread::Reactor* r = thread::current_reactor();
  return r != nullptr ? thread::reactor_id(r) : 0;
}

// RequestState::step of the Connect that went to the home reactor (a second one, refused
// here, must not take the first one's result).
constexpr uint16_t kConnectSent = 1;

bool is_connect(const sp::Sqe& sqe) {
  return sqe.opc == sp::kFabricsOpcode && sp::fabrics_type(sqe) == sp::kFctypeConnect;
}

void run_on_home(void* arg) {
  auto* req = static_cast<Request*>(arg);
  Target::State& target = *req->state.qp->impl().target;
  if (req->sqe.opc == sp::kFabricsOpcode) execute_fabrics(target, req);
  else execute_admin(target, req);
}

void complete_message(void* arg) { QueuePair::Impl::complete(static_cast<Request*>(arg)); }

}  // namespace

QueuePair::Impl::Impl(QueuePair& q, std::shared_ptr<Target::State> t)
    : qp(q), target(std::move(t)), link(std::make_shared<QueueLink>()) {
  link->qp = &q;
  link->reactor = q.reactor_;
}

QueuePair::QueuePair(Target& target) : reactor_(this_reactor()) {
  impl_ = std::make_unique<Impl>(*this, target.state());
}

QueuePair::~QueuePair() {
  if (in_flight_ > 0) log::error("nvmf: queue pair destroyed with {} requests in flight", in_flight_);
  close();
  impl_->link->qp = nullptr;
  // The channels detached but not yet put back (by close() just now, or with a message on
  // its way, which will find the link cleared): with nothing in flight, all go now.
  while (!impl_->draining.empty()) impl_->release_now(impl_->draining.back().get());
}

void QueuePair::execute(Request* req) {
  req->state = {};
  req->state.qp = this;
  req->state.ctrlr = impl_->ctrlr.get();
  req->cqe = {};
  req->cqe.cid = req->sqe.cid;
  ++in_flight_;
  auto refuse = [&](uint16_t status) {
    req->cqe.status = status;
    Impl::complete(req);
  };
  const uint16_t sequence_error = generic_status(sp::kScCommandSequenceError, true);
  if (req->sqe.opc == sp::kFabricsOpcode) {
    const uint8_t fctype = sp::fabrics_type(req->sqe);
    if (fctype == sp::kFctypeConnect) {
      if (state_ != Connection::fresh) return refuse(sequence_error);
      state_ = Connection::connecting;
      req->state.step = kConnectSent;  // this one's completion carries the result
      return impl_->to_home(req);
    }
    if (state_ != Connection::connected) return refuse(sequence_error);
    if (fctype == sp::kFctypeDisconnect) return impl_->disconnect(req);
    // Property Get/Set address the controller's registers: the admin queue's business.
    if (qid_ != 0) return refuse(generic_status(sp::kScInvalidOpcode, true));
    return impl_->to_home(req);
  }
  if (state_ != Connection::connected) return refuse(sequence_error);
  if (qid_ == 0) return impl_->to_home(req);
  impl_->execute_io(req);
}

void QueuePair::close() {
  impl_->close_locally();
  if (!impl_->ctrlr) return;
  // The home reactor drops the queue from its controller; the admin queue ends the
  // association there. The message keeps the controller alive until it has run.
  const uint32_t home = impl_->target->options.home_reactor;
  Status st = thread::send_message(home, [target = impl_->target, ctrlr = impl_->ctrlr, qid = qid_] {
    target->queue_closed(ctrlr, qid);
  });
  if (!st.ok()) log::error("nvmf: closing queue {} of controller {}: {}", qid_, cntlid_, st.to_string());
  impl_->ctrlr.reset();
}

void QueuePair::on_closed_by_target(void (*fn)(void*), void* arg) {
  impl_->closed_fn = fn;
  impl_->closed_arg = arg;
}

void QueuePair::Impl::closed_by_target() {
  if (qp.state_ == Connection::closed) return;
  close_locally();
  if (closed_fn != nullptr) closed_fn(closed_arg);
}

void QueuePair::Impl::to_home(Request* req) {
  const uint32_t home = target->options.home_reactor;
  if (qp.reactor_ == home) return run_on_home(req);
  Status st = thread::send_message_retrying(home, run_on_home, req);
  if (st.ok()) return;
  log::warn("nvmf: handing a command to the home reactor: {}", st.to_string());
  if (is_connect(req->sqe)) qp.state_ = Connection::fresh;
  req->cqe.status = generic_status(sp::kScInternalError);
  complete(req);
}

void QueuePair::Impl::finish(Request* req, uint16_t status, uint32_t dw0) {
  if (status != 0 && req->state.ctrlr != nullptr) record_error(*req->state.ctrlr, req->sqe, status, 0);
  req->cqe.status = status;
  req->cqe.dw0 = dw0;
  QueuePair& q = *req->state.qp;
  if (q.reactor_ == q.impl_->target->options.home_reactor) return complete(req);
  Status st = thread::send_message_retrying(q.reactor_, complete_message, req);
  // Lost only with its reactor (shutdown): the host times the command out.
  if (!st.ok()) log::error("nvmf: returning a completion to reactor {}: {}", q.reactor_, st.to_string());
}

void QueuePair::Impl::complete(Request* req) {
  QueuePair& q = *req->state.qp;
  Impl& impl = *q.impl_;
  if (is_connect(req->sqe) && req->state.step == kConnectSent) {
    ConnectResult r = std::move(impl.connect);
    impl.connect = {};
    const bool ok = req->cqe.status == 0;
    if (ok && q.state_ == Connection::closed) {
      // Closed while connecting: the association just made is undone at once.
      const uint32_t home = impl.target->options.home_reactor;
      Status st = thread::send_message(home, [target = impl.target, ctrlr = r.ctrlr, qid = r.qid] {
        target->queue_closed(ctrlr, qid);
      });
      if (!st.ok()) log::error("nvmf: undoing a connect: {}", st.to_string());
    } else if (ok) {
      q.state_ = Connection::connected;
      q.qid_ = r.qid;
      q.cntlid_ = r.cntlid;
      q.sq_flow_control_disabled_ = r.sq_flow_control_disabled;
      q.subnqn_ = std::move(r.subnqn);
      impl.ctrlr = std::move(r.ctrlr);
      impl.namespaces.resize(r.namespaces.size());
      for (size_t i = 0; i < r.namespaces.size(); ++i)
        if (r.namespaces[i]) impl.set_namespace(static_cast<uint32_t>(i + 1), std::move(r.namespaces[i]));
    } else if (q.state_ == Connection::connecting) {
      q.state_ = Connection::fresh;  // the host may try again
    }
  }
  if (req->cqe.status != 0 && q.qid_ != 0 && impl.ctrlr) {
    // An I/O queue's failure goes into its controller's error log, on the home reactor. Only
    // failures pay for the message (and its allocation).
    Status st = thread::send_message(impl.target->options.home_reactor,
                                     [ctrlr = impl.ctrlr, sqe = req->sqe, status = req->cqe.status, qid = q.qid_] {
                                       record_error(*ctrlr, sqe, status, qid);
                                     });
    if (!st.ok()) log::debug("nvmf: an I/O error not logged: {}", st.to_string());
  }
  --q.in_flight_;
  req->done(req);
}

void QueuePair::Impl::set_namespace(uint32_t nsid, std::shared_ptr<Namespace> ns) {
  if (nsid == 0 || nsid > namespaces.size() || qp.state_ == Connection::closed) return;
  auto& slot = namespaces[nsid - 1];
  if (slot) detach(std::move(slot));
  if (ns) {
    slot = std::make_unique<detail::NsChannel>();
    slot->ns = std::move(ns);
  }
}

void QueuePair::Impl::detach(std::unique_ptr<detail::NsChannel> nc) {
  nc->detached = true;
  draining.push_back(std::move(nc));
  release_if_drained(draining.back().get());
}

void QueuePair::Impl::release_if_drained(detail::NsChannel* nc) {
  if (!nc->detached || nc->in_flight > 0 || nc->releasing) return;
  if (nc->ch == nullptr) return release_now(nc);
  // Not here: this may run inside the channel's own completion callback, and the channel is
  // in use until its poll() returns. A queue pair that goes first releases it itself.
  nc->releasing = true;
  Status st = thread::send_message(qp.reactor_, [link = link, nc] {
    if (link->qp != nullptr) link->qp->impl().release_now(nc);
  });
  if (!st.ok()) {
    log::warn("nvmf: namespace {}: its channel stays until the queue goes: {}", nc->ns->nsid, st.to_string());
    nc->releasing = false;
  }
}

void QueuePair::Impl::release_now(detail::NsChannel* nc) {
  auto it = std::find_if(draining.begin(), draining.end(), [&](auto& p) { return p.get() == nc; });
  if (it == draining.end()) return;
  if (nc->ch != nullptr) {
    Status st = nc->ns->desc->put_channel(nc->ch);
    if (!st.ok()) log::error("nvmf: namespace {}: {}", nc->ns->nsid, st.to_string());
  }
  draining.erase(it);
}

void QueuePair::Impl::close_locally() {
  if (qp.state_ == Connection::connecting) {
    qp.state_ = Connection::closed;  // complete() undoes the association when it arrives
    return;
  }
  qp.state_ = Connection::closed;
  for (auto& slot : namespaces)
    if (slot) detach(std::move(slot));
}

}  // namespace sluice::nvmf
