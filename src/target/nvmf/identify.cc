// Identify: the controller (with the fabrics fields), a namespace, the active namespace
// list and a namespace's identification descriptors.
#include <algorithm>
#include <bit>
#include <cstring>

#include "target/nvmf/nvmf_impl.h"

namespace sluice::nvmf {
namespace {

using Page = std::array<uint8_t, kIdentifySize>;

uint16_t invalid_namespace() { return generic_status(sp::kScInvalidNamespace, true); }

void controller_data(const Target::State& target, const Controller& c, Page& d) {
  namespace idc = sp::idc;
  const TargetOptions& o = target.options;
  const Subsystem* s = c.subsystem;
  sp::put_ascii(d.data(), idc::kSn, 20, s ? s->serial : "");
  sp::put_ascii(d.data(), idc::kMn, 40, s ? s->model : "");
  sp::put_ascii(d.data(), idc::kFr, 8, "1.0");
  d[idc::kRab] = 6;
  d[idc::kCmic] = 1u << 1;  // a namespace may be reached through several controllers
  d[idc::kMdts] = static_cast<uint8_t>(std::countr_zero(std::max<uint32_t>(o.max_io_bytes / 4096, 1)));
  sp::put<uint16_t>(d.data(), idc::kCntlid, c.cntlid);
  sp::put<uint32_t>(d.data(), idc::kVer, sp::kVersion13);
  d[idc::kCntrltype] = c.discovery ? idc::kCntrltypeDiscovery : idc::kCntrltypeIo;
  d[idc::kAcl] = 3;
  d[idc::kAerl] = kAsyncEventRequestLimit - 1;
  d[idc::kLpa] = idc::kLpaExtendedData;  // Get Log Page takes offsets
  d[idc::kElpe] = kErrorLogEntries - 1;
  sp::put<uint16_t>(d.data(), idc::kKas, 1);  // keep-alive granularity: 100 ms
  sp::put<uint16_t>(d.data(), idc::kMaxcmd, o.max_queue_depth);
  d[idc::kSqes] = 0x66;  // 64-byte entries
  d[idc::kCqes] = 0x44;  // 16-byte entries
  sp::put<uint32_t>(d.data(), idc::kSgls, o.sgls);
  if (s != nullptr) std::memcpy(d.data() + idc::kSubnqn, s->nqn.data(), std::min<size_t>(s->nqn.size(), 255));
  // Fabrics: command capsules carry the SQE and up to in_capsule_data_bytes; responses the CQE.
  sp::put<uint32_t>(d.data(), idc::kIoccsz, (64 + o.in_capsule_data_bytes) / 16);
  sp::put<uint32_t>(d.data(), idc::kIorcsz, 1);
  sp::put<uint16_t>(d.data(), idc::kIcdoff, 0);
  d[idc::kFcatt] = 0;  // the dynamic controller model
  d[idc::kMsdbd] = 1;
  if (c.discovery) return;
  sp::put<uint32_t>(d.data(), idc::kOaes, idc::kOaesNamespaceAttribute);
  d[idc::kFrmw] = 1 | 1u << 1;  // one slot, read-only
  sp::put<uint32_t>(d.data(), idc::kNn, s ? static_cast<uint32_t>(s->namespaces.size()) : 0);
  sp::put<uint16_t>(d.data(), idc::kOncs, idc::kOncsCompare | idc::kOncsDsm | idc::kOncsWriteZeroes);
  d[idc::kVwc] = 1;  // FLUSH is honoured: it reaches the bdev
}

void namespace_data(const Namespace& ns, Page& d) {
  namespace idns = sp::idns;
  const bdev::Geometry& g = ns.geometry;
  sp::put<uint64_t>(d.data(), idns::kNsze, g.num_blocks);
  sp::put<uint64_t>(d.data(), idns::kNcap, g.num_blocks);
  sp::put<uint64_t>(d.data(), idns::kNuse, g.num_blocks);
  d[idns::kNlbaf] = 0;
  d[idns::kFlbas] = 0;
  d[idns::kNmic] = 1;  // may be shared by controllers
  d[idns::kDlfeat] = g.unmap_zeroes && g.supports(bdev::IoType::unmap) ? 1 : 0;  // deallocated reads zeroes
  std::memcpy(d.data() + idns::kNguid, ns.nguid.data(), ns.nguid.size());
  sp::put<uint32_t>(d.data(), idns::kLbaf, static_cast<uint32_t>(std::countr_zero(g.block_size)) << 16);
}

void descriptor(Page& d, size_t& off, uint8_t type, const std::array<uint8_t, 16>& id) {
  d[off] = type;
  d[off + 1] = static_cast<uint8_t>(id.size());
  std::memcpy(d.data() + off + 4, id.data(), id.size());
  off += 4 + id.size();
}

}  // namespace

void identify(Target::State& target, Controller& c, Request* req) {
  Page d{};
  const uint8_t cns = req->sqe.cdw10 & 0xff;
  const uint32_t nsid = req->sqe.nsid;
  const Subsystem* s = c.subsystem;
  if (cns == sp::kCnsController) {
    controller_data(target, c, d);
  } else if (c.discovery || s == nullptr) {
    return QueuePair::Impl::finish(req, generic_status(sp::kScInvalidField, true));
  } else if (cns == sp::kCnsNamespace) {
    if (nsid == 0 || nsid > s->namespaces.size()) return QueuePair::Impl::finish(req, invalid_namespace());
    if (const Namespace* ns = s->find_namespace(nsid)) namespace_data(*ns, d);  // inactive: zeroes
  } else if (cns == sp::kCnsActiveNamespaces) {
    if (nsid >= 0xfffffffe) return QueuePair::Impl::finish(req, invalid_namespace());
    size_t n = 0;
    for (const auto& ns : s->namespaces)
      if (ns && ns->nsid > nsid && n < kIdentifySize / 4) sp::put<uint32_t>(d.data(), 4 * n++, ns->nsid);
  } else if (cns == sp::kCnsNamespaceIdDescriptors) {
    const Namespace* ns = s->find_namespace(nsid);
    if (ns == nullptr) return QueuePair::Impl::finish(req, invalid_namespace());
    size_t off = 0;
    descriptor(d, off, sp::kNidtNguid, ns->nguid);
    descriptor(d, off, sp::kNidtUuid, ns->uuid);
  } else {
    return QueuePair::Impl::finish(req, generic_status(sp::kScInvalidField, true));
  }
  copy_to_host(req, d.data(), d.size());
  QueuePair::Impl::finish(req, 0);
}

}  // namespace sluice::nvmf
