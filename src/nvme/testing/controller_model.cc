#include "nvme/testing/controller_model.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "env/env.h"

namespace sluice::nvme::testing {
namespace {

using namespace spec;
constexpr uint64_t kPage = 4096;

uint16_t generic(uint8_t sc) { return make_status(kSctGeneric, sc); }
uint16_t specific(uint8_t sc) { return make_status(kSctCommandSpecific, sc); }

}  // namespace

ControllerModel::ControllerModel(ModelOptions options) : options_(std::move(options)) {
  cap_ = uint64_t{options_.max_queue_entries - 1} | (uint64_t{1} << 16)  // CQR: contiguous queues only
         | (uint64_t{options_.timeout_units} << 24) | (uint64_t{options_.doorbell_stride} << 32) |
         (uint64_t{1} << 37);  // CSS: NVM; MPSMIN = MPSMAX = 0 (4 KiB)
  sqs_.resize(options_.max_io_queues + 1u);
  cqs_.resize(options_.max_io_queues + 1u);
  for (const ModelNamespace& ns : options_.namespaces)
    namespaces_.push_back({ns, std::vector<uint8_t>(ns.blocks * ns.block_size)});
}

ControllerModel::~ControllerModel() {
  unregister_as_test_device();
  if (watch_ != 0) env::dma_unwatch_regions(watch_);
}

void ControllerModel::violation(std::string what) {
  ++violations_;
  log::debug("nvme model: protocol violation: {}", what);
  last_violation_ = std::move(what);
}

void ControllerModel::enable_dma() {
  {
    std::lock_guard lock(mu_);
    if (watch_ != 0) return;
  }
  // Not under mu_: the pool calls back under its growth lock, which then takes mu_.
  uint64_t w = env::dma_watch_regions([this](const iovec& r) {
    std::lock_guard lock(mu_);
    auto b = reinterpret_cast<uintptr_t>(r.iov_base);
    regions_.emplace_back(b, b + r.iov_len);
  });
  std::lock_guard lock(mu_);
  watch_ = w;
}

uint8_t* ControllerModel::dma(uint64_t iova, size_t len) {
  for (const auto& [b, e] : regions_)
    if (iova >= b && iova + len <= e && iova + len >= iova) return reinterpret_cast<uint8_t*>(iova);
  violation(fmt::format("DMA to {:#x} (+{}) outside memory mapped for the device", iova, len));
  return nullptr;
}

// ---- Registers ----------------------------------------------------------------------------

uint32_t ControllerModel::read32(uint32_t off) {
  std::lock_guard lock(mu_);
  switch (off) {
    case kRegCap: return static_cast<uint32_t>(cap_);
    case kRegCap + 4: return static_cast<uint32_t>(cap_ >> 32);
    case kRegVs: return 0x00010400;
    case kRegCc: return cc_;
    case kRegCsts:
      if (reads_until_ready_ > 0 && --reads_until_ready_ == 0) {
        if (ready_target_) csts_ |= kCstsRdy;
        else csts_ &= ~kCstsRdy;
      }
      return csts_;
    case kRegAqa: return aqa_;
    case kRegAsq: return static_cast<uint32_t>(asq_);
    case kRegAsq + 4: return static_cast<uint32_t>(asq_ >> 32);
    case kRegAcq: return static_cast<uint32_t>(acq_);
    case kRegAcq + 4: return static_cast<uint32_t>(acq_ >> 32);
    default: return 0;
  }
}

void ControllerModel::write32(uint32_t off, uint32_t v) {
  std::lock_guard lock(mu_);
  const bool en = cc_ & kCcEnable;
  auto admin_reg = [&](auto apply) {
    if (en) violation(fmt::format("write to admin queue register {:#x} while enabled", off));
    else apply();
  };
  switch (off) {
    case kRegCc: {
      const uint32_t old = cc_;
      cc_ = v;
      if (!(old & kCcEnable) && (v & kCcEnable)) enable_locked();
      else if ((old & kCcEnable) && !(v & kCcEnable)) disable_locked((csts_ & kCstsShstMask) != kCstsShstComplete);
      if ((v & kCcEnable) && (v & kCcShnMask) && !(old & kCcShnMask)) {
        // Shutdown: finish what is queued, then report it complete.
        ++counters_.shutdowns;
        csts_ = (csts_ & ~kCstsShstMask) | kCstsShstComplete;
      }
      return;
    }
    case kRegAqa: admin_reg([&] { aqa_ = v; }); return;
    case kRegAsq: admin_reg([&] { asq_ = (asq_ & ~0xffffffffull) | v; }); return;
    case kRegAsq + 4: admin_reg([&] { asq_ = (asq_ & 0xffffffffull) | (uint64_t{v} << 32); }); return;
    case kRegAcq: admin_reg([&] { acq_ = (acq_ & ~0xffffffffull) | v; }); return;
    case kRegAcq + 4: admin_reg([&] { acq_ = (acq_ & 0xffffffffull) | (uint64_t{v} << 32); }); return;
    case kRegIntms:
    case kRegIntmc:
      return;
    default: break;
  }
  if (off < kRegDoorbells) {
    violation(fmt::format("write to reserved register {:#x}", off));
    return;
  }
  const uint32_t stride = 4u << options_.doorbell_stride;
  if ((off - kRegDoorbells) % stride != 0) {
    violation(fmt::format("doorbell write at {:#x} is not on the {}-byte stride", off, stride));
    return;
  }
  ++counters_.doorbell_writes;
  const uint32_t index = (off - kRegDoorbells) / stride;
  if (index / 2 >= sqs_.size()) {
    violation(fmt::format("doorbell write at {:#x} beyond the supported queues", off));
    return;
  }
  if (index % 2 == 0) sq_doorbell(static_cast<uint16_t>(index / 2), v);
  else cq_doorbell(static_cast<uint16_t>(index / 2), v);
}

void ControllerModel::enable_locked() {
  ++counters_.enables;
  csts_ &= ~(kCstsShstMask | kCstsCfs);
  auto fatal = [&](std::string why) {
    violation("enable refused: " + why);
    csts_ |= kCstsCfs;
  };
  const uint32_t asqs = (aqa_ & 0xfff) + 1, acqs = ((aqa_ >> 16) & 0xfff) + 1;
  if (cc_get_css(cc_) != 0) return fatal("CC.CSS is not the NVM command set");
  if (cc_get_mps(cc_) != 0) return fatal("CC.MPS outside CAP.MPSMIN..MPSMAX");
  if (asqs < 2 || acqs < 2) return fatal("admin queues smaller than 2 entries");
  if ((asq_ & (kPage - 1)) || (acq_ & (kPage - 1))) return fatal("admin queue base not page-aligned");
  if (dma(asq_, asqs * sizeof(Sqe)) == nullptr || dma(acq_, acqs * sizeof(Cqe)) == nullptr)
    return fatal("admin queue memory unreachable");
  for (auto& q : sqs_) q = {};
  for (auto& q : cqs_) q = {};
  sqs_[0] = {true, asq_, asqs, 0, 0, 0};
  cqs_[0].valid = true;
  cqs_[0].base = acq_;
  cqs_[0].size = acqs;
  queues_granted_ = 0;
  ready_target_ = !options_.never_ready;
  reads_until_ready_ = std::max<uint32_t>(options_.ready_after_reads, 1);
}

void ControllerModel::disable_locked(bool unsafe) {
  ++counters_.disables;
  if (unsafe) ++counters_.unsafe_shutdowns;
  for (auto& q : sqs_) q = {};
  for (auto& q : cqs_) q = {};
  stalled_.clear();  // a reset drops everything in flight
  queues_granted_ = 0;
  ready_target_ = false;
  reads_until_ready_ = std::max<uint32_t>(options_.ready_after_reads, 1);
  csts_ &= ~kCstsShstMask;
}

void ControllerModel::sq_doorbell(uint16_t qid, uint32_t v) {
  Sq& sq = sqs_[qid];
  if (!(cc_ & kCcEnable) || !(csts_ & kCstsRdy)) return violation(fmt::format("SQ {} doorbell while not ready", qid));
  if (!sq.valid) return violation(fmt::format("SQ {} doorbell for a queue that does not exist", qid));
  if (v >= sq.size) return violation(fmt::format("SQ {} tail {} beyond its {} entries", qid, v, sq.size));
  sq.tail = v;
  if (options_.process_on_doorbell || qid == 0) run_sq(qid);
}

void ControllerModel::cq_doorbell(uint16_t qid, uint32_t v) {
  Cq& cq = cqs_[qid];
  if (!cq.valid) return violation(fmt::format("CQ {} doorbell for a queue that does not exist", qid));
  if (v >= cq.size) return violation(fmt::format("CQ {} head {} beyond its {} entries", qid, v, cq.size));
  const uint32_t posted = (cq.tail + cq.size - cq.head) % cq.size;
  const uint32_t advance = (v + cq.size - cq.head) % cq.size;
  if (advance > posted)
    return violation(fmt::format("CQ {} head {} passes the {} completions posted", qid, v, posted));
  cq.head = v;
  drain_pending(cq);
}

void ControllerModel::process() {
  std::lock_guard lock(mu_);
  for (uint16_t q = 0; q < sqs_.size(); ++q)
    if (sqs_[q].valid) run_sq(q);
}

void ControllerModel::run_sq(uint16_t qid) {
  Sq& sq = sqs_[qid];
  while (sq.valid && sq.head != sq.tail) {
    const uint8_t* p = dma(sq.base + uint64_t{sq.head} * sizeof(Sqe), sizeof(Sqe));
    if (p == nullptr) {
      csts_ |= kCstsCfs;
      return;
    }
    Sqe sqe;
    std::memcpy(&sqe, p, sizeof sqe);
    sq.head = (sq.head + 1) % sq.size;
    execute(qid, sqe);
  }
}

// ---- Completions -------------------------------------------------------------------------

void ControllerModel::execute(uint16_t sqid, const Sqe& sqe) {
  ++counters_.commands;
  Outcome r;
  if (cid_in_use(sqid, sqe.cid)) r.status = generic(0x03);  // command ID conflict
  else if (!injected(sqid, sqe, r)) r = sqid == 0 ? admin(sqe) : io(sqe);
  if (r.stall) {
    stalled_.push_back({sqid, sqe});
    return;
  }
  complete(sqid, sqe, r.status, r.dw0);
}

bool ControllerModel::cid_in_use(uint16_t sqid, uint16_t cid) const {
  return std::any_of(stalled_.begin(), stalled_.end(), [&](const Stalled& s) { return s.sqid == sqid && s.sqe.cid == cid; });
}

bool ControllerModel::injected(uint16_t sqid, const Sqe& sqe, Outcome& r) {
  for (auto it = injections_.begin(); it != injections_.end(); ++it) {
    if (it->qid != Injection::kAnyQueue && it->qid != sqid) continue;
    if (it->opcode != Injection::kAnyOpcode && it->opcode != sqe.opc) continue;
    r.status = it->status;
    r.stall = it->stall;
    if (it->count > 0 && --it->count == 0) injections_.erase(it);
    return true;
  }
  return false;
}

void ControllerModel::complete(uint16_t sqid, const Sqe& sqe, uint16_t status, uint32_t dw0) {
  if (!sqs_[sqid].valid) return;
  Cqe cqe = {};
  cqe.dw0 = dw0;
  cqe.sqhd = static_cast<uint16_t>(sqs_[sqid].head);
  cqe.sqid = sqid;
  cqe.cid = sqe.cid;
  cqe.status = status;
  if (status != 0) log_error(sqid, sqe, status);
  post(sqs_[sqid].cqid, cqe);
}

void ControllerModel::log_error(uint16_t sqid, const Sqe& sqe, uint16_t status) {
  ++counters_.error_completions;
  ErrorLogEntry e = {};
  e.error_count = ++error_count_;
  e.sqid = sqid;
  e.cid = sqe.cid;
  e.status = status;
  e.param_location = 0xffff;
  e.lba = sqid != 0 ? (uint64_t{sqe.cdw11} << 32 | sqe.cdw10) : 0;
  e.nsid = sqe.nsid;
  error_log_.insert(error_log_.begin(), e);
  if (error_log_.size() > 64) error_log_.pop_back();
}

void ControllerModel::post(uint16_t cqid, const Cqe& cqe) {
  Cq& cq = cqs_[cqid];
  if (!cq.valid) return;
  if (!cq.pending.empty() || (cq.tail + 1) % cq.size == cq.head) {
    cq.pending.push_back(cqe);
    return;
  }
  auto* dst = reinterpret_cast<Cqe*>(dma(cq.base + uint64_t{cq.tail} * sizeof(Cqe), sizeof(Cqe)));
  if (dst == nullptr) return;
  std::memcpy(dst, &cqe, offsetof(Cqe, status));
  // The phase bit is what the host polls: publish the entry with it, last.
  __atomic_store_n(&dst->status, static_cast<uint16_t>((cqe.status & ~1u) | cq.phase), __ATOMIC_RELEASE);
  if (++cq.tail == cq.size) {
    cq.tail = 0;
    cq.phase ^= 1;
  }
}

void ControllerModel::drain_pending(Cq& cq) {
  while (!cq.pending.empty() && (cq.tail + 1) % cq.size != cq.head) {
    Cqe cqe = cq.pending.front();
    cq.pending.pop_front();
    auto* dst = reinterpret_cast<Cqe*>(dma(cq.base + uint64_t{cq.tail} * sizeof(Cqe), sizeof(Cqe)));
    if (dst == nullptr) return;
    std::memcpy(dst, &cqe, offsetof(Cqe, status));
    __atomic_store_n(&dst->status, static_cast<uint16_t>((cqe.status & ~1u) | cq.phase), __ATOMIC_RELEASE);
    if (++cq.tail == cq.size) {
      cq.tail = 0;
      cq.phase ^= 1;
    }
  }
}

// ---- PRPs --------------------------------------------------------------------------------

template <typename Fn>
uint16_t ControllerModel::walk_prps(const Sqe& sqe, size_t bytes, Fn fn) {
  if ((sqe.flags & 0xc0) != 0) return generic(kScInvalidField);  // SGLs are not supported
  if (sqe.prp1 & 3) return generic(kScPrpOffsetInvalid);
  size_t len = std::min<size_t>(bytes, kPage - sqe.prp1 % kPage);
  uint8_t* p = dma(sqe.prp1, len);
  if (p == nullptr) return generic(kScDataTransferError);
  fn(p, len);
  size_t remaining = bytes - len;
  if (remaining == 0) return 0;
  if (remaining <= kPage) {
    if (sqe.prp2 % kPage) return generic(kScPrpOffsetInvalid);
    if ((p = dma(sqe.prp2, remaining)) == nullptr) return generic(kScDataTransferError);
    fn(p, remaining);
    return 0;
  }
  if (sqe.prp2 & 7) return generic(kScPrpOffsetInvalid);
  ++counters_.prp_list_pages;
  uint64_t pos = sqe.prp2;
  while (remaining > 0) {
    const uint8_t* e = dma(pos, 8);
    if (e == nullptr) return generic(kScDataTransferError);
    const uint64_t entry = get<uint64_t>(e, 0);
    if (pos % kPage == kPage - 8 && remaining > kPage) {  // the last slot chains to the next list page
      if (entry & 7) return generic(kScPrpOffsetInvalid);
      ++counters_.prp_list_pages;
      pos = entry;
      continue;
    }
    if (entry % kPage) return generic(kScPrpOffsetInvalid);
    len = std::min<size_t>(remaining, kPage);
    if ((p = dma(entry, len)) == nullptr) return generic(kScDataTransferError);
    fn(p, len);
    remaining -= len;
    pos += 8;
  }
  return 0;
}

// ---- Admin commands ------------------------------------------------------------------------

ControllerModel::Outcome ControllerModel::admin(const Sqe& sqe) {
  ++counters_.admin_commands;
  if (sqe.flags & 0x3) return {generic(kScInvalidField)};
  switch (sqe.opc) {
    case kAdminIdentify: return identify(sqe);
    case kAdminGetLogPage: return get_log_page(sqe);
    case kAdminCreateCq: return create_cq(sqe);
    case kAdminCreateSq: return create_sq(sqe);
    case kAdminDeleteSq: return delete_sq(sqe);
    case kAdminDeleteCq: return delete_cq(sqe);
    case kAdminAbort: return abort_command(sqe);
    case kAdminSetFeatures: {
      const uint8_t fid = sqe.cdw10 & 0xff;
      if (fid == kFeatureVolatileWriteCache) return {};
      if (fid != kFeatureNumberOfQueues) return {generic(kScInvalidField)};
      const uint32_t nsq = (sqe.cdw11 & 0xffff) + 1, ncq = (sqe.cdw11 >> 16) + 1;
      if (nsq > 0xffff || ncq > 0xffff) return {generic(kScInvalidField)};
      for (uint16_t q = 1; q < sqs_.size(); ++q)
        if (sqs_[q].valid || cqs_[q].valid) return {generic(0x0c)};  // command sequence error
      queues_granted_ = static_cast<uint16_t>(std::min<uint32_t>({nsq, ncq, options_.max_io_queues}));
      return {0, uint32_t(queues_granted_ - 1) | (uint32_t(queues_granted_ - 1) << 16)};
    }
    case kAdminGetFeatures: {
      if ((sqe.cdw10 & 0xff) != kFeatureNumberOfQueues) return {generic(kScInvalidField)};
      const uint32_t n = (queues_granted_ ? queues_granted_ : options_.max_io_queues) - 1u;
      return {0, n | (n << 16)};
    }
    default:
      return {generic(kScInvalidOpcode)};
  }
}

ControllerModel::Outcome ControllerModel::identify(const Sqe& sqe) {
  uint8_t d[kPage] = {};
  const uint8_t cns = sqe.cdw10 & 0xff;
  if (cns == kCnsController) {
    put<uint16_t>(d, idc::kVid, 0x1b36);
    put<uint16_t>(d, idc::kSsvid, 0x1af4);
    put_ascii(d, idc::kSn, 20, "SLUICEMODEL0001");
    put_ascii(d, idc::kMn, 40, "Sluice NVMe controller model");
    put_ascii(d, idc::kFr, 8, "1.0");
    d[idc::kMdts] = options_.mdts;
    put<uint16_t>(d, idc::kCntlid, 1);
    put<uint32_t>(d, idc::kVer, 0x00010400);
    d[idc::kAcl] = 3;
    d[idc::kElpe] = 63;
    d[idc::kSqes] = 0x66;
    d[idc::kCqes] = 0x44;
    uint32_t nn = 0;
    for (const auto& ns : namespaces_) nn = std::max(nn, ns.geo.nsid);
    put<uint32_t>(d, idc::kNn, nn);
    put<uint16_t>(d, idc::kOncs, idc::kOncsDsm | idc::kOncsWriteZeroes);
    d[idc::kVwc] = options_.volatile_write_cache ? 1 : 0;
    std::string nqn = "nqn.2024-01.io.sluice:model:" + options_.bdf;
    std::memcpy(d + idc::kSubnqn, nqn.data(), std::min<size_t>(nqn.size(), 255));
  } else if (cns == kCnsNamespace) {
    uint32_t nn = 0;
    for (const auto& ns : namespaces_) nn = std::max(nn, ns.geo.nsid);
    if (sqe.nsid == 0 || (sqe.nsid > nn && sqe.nsid != 0xffffffff)) return {generic(kScInvalidNamespace)};
    if (Namespace* ns = find_ns(sqe.nsid)) {
      put<uint64_t>(d, idns::kNsze, ns->geo.blocks);
      put<uint64_t>(d, idns::kNcap, ns->geo.blocks);
      put<uint64_t>(d, idns::kNuse, ns->geo.blocks);
      d[idns::kNlbaf] = 0;
      d[idns::kFlbas] = 0;
      d[idns::kDlfeat] = 1;  // deallocated blocks read as zeroes
      uint32_t lbads = 0;
      while ((1u << lbads) < ns->geo.block_size) ++lbads;
      put<uint32_t>(d, idns::kLbaf, lbads << 16);
    }  // an inactive namespace: all zeroes
  } else if (cns == kCnsActiveNamespaces) {
    if (sqe.nsid >= 0xfffffffe) return {generic(kScInvalidNamespace)};
    std::vector<uint32_t> ids;
    for (const auto& ns : namespaces_)
      if (ns.geo.nsid > sqe.nsid) ids.push_back(ns.geo.nsid);
    std::sort(ids.begin(), ids.end());
    for (size_t i = 0; i < ids.size() && i < kPage / 4; ++i) put<uint32_t>(d, i * 4, ids[i]);
  } else {
    return {generic(kScInvalidField)};
  }
  size_t off = 0;
  uint16_t st = walk_prps(sqe, kPage, [&](uint8_t* p, size_t n) {
    std::memcpy(p, d + off, n);
    off += n;
  });
  return {st};
}

ControllerModel::Outcome ControllerModel::get_log_page(const Sqe& sqe) {
  const uint8_t lid = sqe.cdw10 & 0xff;
  const size_t bytes = ((size_t{sqe.cdw11 & 0xffff} << 16 | (sqe.cdw10 >> 16)) + 1) * 4;
  const uint64_t offset = uint64_t{sqe.cdw13} << 32 | sqe.cdw12;
  std::vector<uint8_t> page;
  if (lid == kLogSmart) {
    if (sqe.nsid != 0xffffffff && sqe.nsid != 0 && find_ns(sqe.nsid) == nullptr) return {generic(kScInvalidNamespace)};
    page.resize(512);
    uint8_t* d = page.data();
    d[smart::kCriticalWarning] = 0;
    put<uint16_t>(d, smart::kTemperature, 313);
    d[smart::kAvailableSpare] = 100;
    d[smart::kSpareThreshold] = 10;
    put<uint64_t>(d, smart::kDataUnitsRead, (data_units_read_ + 999) / 1000);
    put<uint64_t>(d, smart::kDataUnitsWritten, (data_units_written_ + 999) / 1000);
    put<uint64_t>(d, smart::kHostReads, counters_.reads);
    put<uint64_t>(d, smart::kHostWrites, counters_.writes);
    put<uint64_t>(d, smart::kPowerCycles, 1);
    put<uint64_t>(d, smart::kUnsafeShutdowns, counters_.unsafe_shutdowns);
    uint64_t media = 0;
    for (const auto& e : error_log_)
      if (status_sct(e.status) == kSctMedia) ++media;
    put<uint64_t>(d, smart::kMediaErrors, media);
    put<uint64_t>(d, smart::kErrorLogEntries, error_count_);
  } else if (lid == kLogError) {
    page.resize(64 * sizeof(ErrorLogEntry));
    for (size_t i = 0; i < error_log_.size(); ++i) std::memcpy(page.data() + i * sizeof(ErrorLogEntry), &error_log_[i], sizeof(ErrorLogEntry));
  } else {
    return {specific(kScInvalidLogPage)};
  }
  if (offset % 4 || offset > page.size()) return {generic(kScInvalidField)};
  page.resize(std::max(page.size(), offset + bytes));  // beyond the log reads as zeroes
  size_t off = offset;
  return {walk_prps(sqe, bytes, [&](uint8_t* p, size_t n) {
    std::memcpy(p, page.data() + off, n);
    off += n;
  })};
}

ControllerModel::Outcome ControllerModel::create_cq(const Sqe& sqe) {
  const uint32_t qid = sqe.cdw10 & 0xffff, size = (sqe.cdw10 >> 16) + 1;
  const uint32_t limit = queues_granted_ ? queues_granted_ : options_.max_io_queues;
  if (qid == 0 || qid > limit || cqs_[qid].valid) return {specific(kScInvalidQueueId)};
  if (size < 2 || size > options_.max_queue_entries) return {specific(kScInvalidQueueSize)};
  if (!(sqe.cdw11 & 1)) return {generic(kScInvalidField)};  // CAP.CQR: contiguous only
  if (cc_get_iocqes(cc_) != 4) return {generic(kScInvalidField)};
  if (sqe.prp1 % kPage) return {generic(kScPrpOffsetInvalid)};
  if (dma(sqe.prp1, size * sizeof(Cqe)) == nullptr) return {generic(kScDataTransferError)};
  Cq& cq = cqs_[qid];
  cq = {};
  cq.valid = true;
  cq.base = sqe.prp1;
  cq.size = size;
  return {};
}

ControllerModel::Outcome ControllerModel::create_sq(const Sqe& sqe) {
  const uint32_t qid = sqe.cdw10 & 0xffff, size = (sqe.cdw10 >> 16) + 1, cqid = sqe.cdw11 >> 16;
  const uint32_t limit = queues_granted_ ? queues_granted_ : options_.max_io_queues;
  if (qid == 0 || qid > limit || sqs_[qid].valid) return {specific(kScInvalidQueueId)};
  if (cqid == 0 || cqid >= cqs_.size() || !cqs_[cqid].valid) return {specific(kScCompletionQueueInvalid)};
  if (size < 2 || size > options_.max_queue_entries) return {specific(kScInvalidQueueSize)};
  if (!(sqe.cdw11 & 1)) return {generic(kScInvalidField)};
  if (cc_get_iosqes(cc_) != 6) return {generic(kScInvalidField)};
  if (sqe.prp1 % kPage) return {generic(kScPrpOffsetInvalid)};
  if (dma(sqe.prp1, size * sizeof(Sqe)) == nullptr) return {generic(kScDataTransferError)};
  sqs_[qid] = {true, sqe.prp1, size, 0, 0, static_cast<uint16_t>(cqid)};
  return {};
}

ControllerModel::Outcome ControllerModel::delete_sq(const Sqe& sqe) {
  const uint32_t qid = sqe.cdw10 & 0xffff;
  if (qid == 0 || qid >= sqs_.size() || !sqs_[qid].valid) return {specific(kScInvalidQueueId)};
  // Commands still held complete as aborted by the deletion, before the SQ goes away.
  for (auto it = stalled_.begin(); it != stalled_.end();) {
    if (it->sqid == qid) {
      complete(it->sqid, it->sqe, generic(kScAbortedSqDeletion), 0);
      it = stalled_.erase(it);
    } else {
      ++it;
    }
  }
  sqs_[qid] = {};
  return {};
}

ControllerModel::Outcome ControllerModel::delete_cq(const Sqe& sqe) {
  const uint32_t qid = sqe.cdw10 & 0xffff;
  if (qid == 0 || qid >= cqs_.size() || !cqs_[qid].valid) return {specific(kScInvalidQueueId)};
  for (const Sq& sq : sqs_)
    if (sq.valid && sq.cqid == qid) return {specific(kScInvalidQueueDeletion)};
  cqs_[qid] = {};
  return {};
}

ControllerModel::Outcome ControllerModel::abort_command(const Sqe& sqe) {
  const uint16_t sqid = sqe.cdw10 & 0xffff, cid = static_cast<uint16_t>(sqe.cdw10 >> 16);
  for (auto it = stalled_.begin(); it != stalled_.end(); ++it) {
    if (it->sqid == sqid && it->sqe.cid == cid) {
      Stalled s = *it;
      stalled_.erase(it);
      complete(s.sqid, s.sqe, generic(kScAbortRequested), 0);
      ++counters_.aborts_done;
      return {0, 0};
    }
  }
  return {0, 1};  // not aborted: the command already completed (or never existed)
}

// ---- I/O commands --------------------------------------------------------------------------

ControllerModel::Namespace* ControllerModel::find_ns(uint32_t nsid) {
  for (auto& ns : namespaces_)
    if (ns.geo.nsid == nsid) return &ns;
  return nullptr;
}

ControllerModel::Outcome ControllerModel::io(const Sqe& sqe) {
  if (sqe.flags & 0x3) return {generic(kScInvalidField)};  // no fused operations
  if (sqe.opc == kIoFlush) {
    ++counters_.flushes;
    if (sqe.nsid == 0xffffffff || find_ns(sqe.nsid)) return {};
    return {generic(kScInvalidNamespace)};
  }
  Namespace* ns = find_ns(sqe.nsid);
  if (ns == nullptr) return {generic(kScInvalidNamespace)};
  const uint64_t slba = uint64_t{sqe.cdw11} << 32 | sqe.cdw10;
  const uint32_t nlb = (sqe.cdw12 & 0xffff) + 1;
  const uint32_t bs = ns->geo.block_size;
  auto in_range = [&](uint64_t lba, uint64_t n) { return lba < ns->geo.blocks && n <= ns->geo.blocks - lba; };
  switch (sqe.opc) {
    case kIoRead:
    case kIoWrite: {
      if (!in_range(slba, nlb)) return {generic(kScLbaOutOfRange)};
      const size_t bytes = size_t{nlb} * bs;
      if (options_.mdts != 0 && bytes > (kPage << options_.mdts)) return {generic(kScInvalidField)};
      uint8_t* media = ns->data.data() + slba * bs;
      size_t off = 0;
      const bool rd = sqe.opc == kIoRead;
      uint16_t st = walk_prps(sqe, bytes, [&](uint8_t* p, size_t n) {
        if (rd) std::memcpy(p, media + off, n);
        else std::memcpy(media + off, p, n);
        off += n;
      });
      if (st == 0) {
        if (rd) ++counters_.reads, data_units_read_ += bytes / 512;
        else ++counters_.writes, data_units_written_ += bytes / 512;
      }
      return {st};
    }
    case kIoWriteZeroes:
      if (!in_range(slba, nlb)) return {generic(kScLbaOutOfRange)};
      std::memset(ns->data.data() + slba * bs, 0, size_t{nlb} * bs);
      ++counters_.write_zeroes;
      return {};
    case kIoDatasetManagement: {
      const uint32_t nr = (sqe.cdw10 & 0xff) + 1;
      std::vector<DsmRange> ranges(nr);
      size_t off = 0;
      uint16_t st = walk_prps(sqe, nr * sizeof(DsmRange), [&](uint8_t* p, size_t n) {
        std::memcpy(reinterpret_cast<uint8_t*>(ranges.data()) + off, p, n);
        off += n;
      });
      if (st != 0) return {st};
      if (!(sqe.cdw11 & kDsmDeallocate)) return {};
      for (const DsmRange& r : ranges)
        if (!in_range(r.slba, r.nlb)) return {generic(kScLbaOutOfRange)};
      for (const DsmRange& r : ranges) std::memset(ns->data.data() + r.slba * bs, 0, size_t{r.nlb} * bs);
      ++counters_.deallocates;
      return {};
    }
    default:
      return {generic(kScInvalidOpcode)};
  }
}

// ---- Test controls ---------------------------------------------------------------------------

void ControllerModel::inject(const Injection& injection) {
  std::lock_guard lock(mu_);
  injections_.push_back(injection);
}

void ControllerModel::clear_injections() {
  std::lock_guard lock(mu_);
  injections_.clear();
}

size_t ControllerModel::release_stalled() {
  std::lock_guard lock(mu_);
  std::vector<Stalled> held;
  held.swap(stalled_);
  for (const Stalled& s : held) {
    Outcome r = s.sqid == 0 ? admin(s.sqe) : io(s.sqe);
    complete(s.sqid, s.sqe, r.status, r.dw0);
  }
  return held.size();
}

size_t ControllerModel::stalled() const {
  std::lock_guard lock(mu_);
  return stalled_.size();
}

uint8_t* ControllerModel::ns_data(uint32_t nsid) {
  std::lock_guard lock(mu_);
  Namespace* ns = find_ns(nsid);
  return ns ? ns->data.data() : nullptr;
}

ControllerModel::Counters ControllerModel::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

uint64_t ControllerModel::violations() const {
  std::lock_guard lock(mu_);
  return violations_;
}

std::string ControllerModel::last_violation() const {
  std::lock_guard lock(mu_);
  return last_violation_;
}

bool ControllerModel::enabled() const {
  std::lock_guard lock(mu_);
  return (cc_ & kCcEnable) && (csts_ & kCstsRdy);
}

bool ControllerModel::shutdown_complete() const {
  std::lock_guard lock(mu_);
  return (csts_ & kCstsShstMask) == kCstsShstComplete;
}

size_t ControllerModel::io_queue_count() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (size_t q = 1; q < sqs_.size(); ++q) n += sqs_[q].valid;
  return n;
}

}  // namespace sluice::nvme::testing
