// Admin commands on the home reactor: the dispatch, features, Asynchronous Event Request,
// Keep Alive and Abort. Identify and Get Log Page have files of their own.
#include <algorithm>

#include "target/nvmf/nvmf_impl.h"

namespace sluice::nvmf {
namespace {

uint16_t invalid_field() { return generic_status(sp::kScInvalidField, true); }

bool has_io_queues(const Controller& c) {
  return std::any_of(c.queues.begin() + std::min<size_t>(1, c.queues.size()), c.queues.end(),
                     [](auto& q) { return q != nullptr; });
}

uint32_t queue_count_dw0(uint32_t n) { return (n - 1) | (n - 1) << 16; }

void set_features(Target::State& target, Controller& c, Request* req) {
  const uint32_t value = req->sqe.cdw11;
  switch (req->sqe.cdw10 & 0xff) {
    case sp::kFeatureNumberOfQueues: {
      if (c.discovery) break;
      const uint32_t nsq = (value & 0xffff) + 1, ncq = (value >> 16) + 1;
      if (nsq == 0x10000 || ncq == 0x10000) break;
      if (has_io_queues(c)) return QueuePair::Impl::finish(req, generic_status(sp::kScCommandSequenceError, true));
      c.io_queues_granted = static_cast<uint16_t>(std::min<uint32_t>({nsq, ncq, target.options.max_io_queues}));
      return QueuePair::Impl::finish(req, 0, queue_count_dw0(c.io_queues_granted));
    }
    case sp::kFeatureAsyncEventConfig:
      c.async_event_config = value & sp::kAecNamespaceAttributeNotices;  // the only event raised here
      return QueuePair::Impl::finish(req, 0);
    case sp::kFeatureKeepAliveTimer:
      c.kato_ms = value;
      c.last_keep_alive_ms = target.now_ms();
      c.keep_alive_expired = false;
      return QueuePair::Impl::finish(req, 0);
    case sp::kFeatureVolatileWriteCache:
      if (c.discovery) break;
      c.volatile_write_cache = value & 1;
      return QueuePair::Impl::finish(req, 0);
    default: break;
  }
  QueuePair::Impl::finish(req, invalid_field());
}

void get_features(Target::State& target, Controller& c, Request* req) {
  switch (req->sqe.cdw10 & 0xff) {
    case sp::kFeatureNumberOfQueues:
      if (c.discovery) break;
      return QueuePair::Impl::finish(
          req, 0, queue_count_dw0(c.io_queues_granted ? c.io_queues_granted : target.options.max_io_queues));
    case sp::kFeatureAsyncEventConfig: return QueuePair::Impl::finish(req, 0, c.async_event_config);
    case sp::kFeatureKeepAliveTimer: return QueuePair::Impl::finish(req, 0, c.kato_ms);
    case sp::kFeatureVolatileWriteCache:
      if (c.discovery) break;
      return QueuePair::Impl::finish(req, 0, c.volatile_write_cache ? 1 : 0);
    default: break;
  }
  QueuePair::Impl::finish(req, invalid_field());
}

void async_event_request(Controller& c, Request* req) {
  if (c.aers.size() >= kAsyncEventRequestLimit)
    return QueuePair::Impl::finish(req, specific_status(sp::kScAsyncEventLimitExceeded));
  if (!c.pending_events.empty()) {
    const uint32_t dw0 = c.pending_events.front();
    c.pending_events.pop_front();
    return QueuePair::Impl::finish(req, 0, dw0);
  }
  c.aers.push_back(req);  // completed by raise_event() or the end of the association
}

}  // namespace

void execute_admin(Target::State& target, Request* req) {
  Controller& c = *req->state.ctrlr;
  // The association ended (its subsystem went) while this command was on its way.
  if (c.subsystem == nullptr) return QueuePair::Impl::finish(req, generic_status(sp::kScAbortedSqDeletion));
  if (req->sqe.flags & 0x3) return QueuePair::Impl::finish(req, invalid_field());  // no fused commands
  switch (req->sqe.opc) {
    case sp::kAdminIdentify: return identify(target, c, req);
    case sp::kAdminGetLogPage: return get_log_page(target, c, req);
    case sp::kAdminSetFeatures: return set_features(target, c, req);
    case sp::kAdminGetFeatures: return get_features(target, c, req);
    case sp::kAdminAsyncEventRequest: return async_event_request(c, req);
    case sp::kAdminKeepAlive:
      c.last_keep_alive_ms = target.now_ms();
      return QueuePair::Impl::finish(req, 0);
    case sp::kAdminAbort:
      // Commands here run to completion without waiting on anything the host could cancel
      // (an AER is not abortable by Abort): DW0 bit 0 says "not aborted".
      if (c.discovery) break;
      return QueuePair::Impl::finish(req, 0, 1);
    default: break;
  }
  QueuePair::Impl::finish(req, generic_status(sp::kScInvalidOpcode, true));
}

}  // namespace sluice::nvmf
