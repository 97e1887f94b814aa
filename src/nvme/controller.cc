// Controller bring-up and the control path: enable/disable with CAP.TO timeouts, the admin
// queue, Identify, Set Features (Number of Queues), reset and clean shutdown.
#include <algorithm>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "base/clock.h"
#include "base/log.h"
#include "env/env.h"
#include "nvme/admin_queue.h"
#include "nvme/fabrics_device.h"
#include "nvme/nvme.h"

namespace sluice::nvme {
namespace {

using spec::kPage;

std::string trimmed(const uint8_t* p, size_t n) {
  std::string s(reinterpret_cast<const char*>(p), n);
  s.erase(std::find(s.begin(), s.end(), '\0'), s.end());
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// Waits up to `timeout_ms` for `cond`; spins briefly, then sleeps a millisecond at a time.
template <typename Cond>
bool wait_for(Cond cond, uint64_t timeout_ms) {
  const uint64_t deadline = clock::now_ns() + timeout_ms * 1000000;
  for (int i = 0;; ++i) {
    if (cond()) return true;
    if (clock::now_ns() > deadline) return cond();
    if (i > 100) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// An owned DMA buffer for admin data.
struct AdminBuffer {
  explicit AdminBuffer(size_t n) : p(env::dma_zalloc(std::max<size_t>(n, kPage))) {}
  ~AdminBuffer() { env::dma_free(p); }
  void* p;
};

}  // namespace

Controller::Controller(std::unique_ptr<PciDevice> device, const ControllerOptions& options)
    : device_(std::move(device)), options_(options) {}

Controller::~Controller() {
  if (!shut_down_) {
    Status st = shutdown();
    if (!st.ok()) log::warn("nvme {}: {}", info_.bdf, st.to_string());
  }
}

Result<std::shared_ptr<Controller>> Controller::open(std::string_view bdf, const ControllerOptions& options) {
  auto canon = canonical_bdf(bdf);
  if (!canon.ok()) return canon.status();
  auto dev = open_pci_device(*canon, options.sysfs_root);
  if (!dev.ok()) return dev.status();
  return attach(std::move(dev.value()), options);
}

Result<std::shared_ptr<Controller>> Controller::connect_tcp(const TcpTarget& target, const ControllerOptions& options) {
  const uint32_t admin_entries = std::clamp<uint32_t>(options.admin_queue_entries, 2, 4096);
  auto dev = FabricsDevice::connect(target, admin_entries, options.admin_timeout_ms);
  if (!dev.ok())
    return Status(dev.status().code(), fmt::format("nvme-tcp {}: {}", target.to_string(), dev.status().message()));
  return attach(std::move(dev.value()), options);
}

Result<std::shared_ptr<Controller>> Controller::attach(std::unique_ptr<PciDevice> device,
                                                      const ControllerOptions& options) {
  std::shared_ptr<Controller> ctrl(new Controller(std::move(device), options));
  ctrl->info_.bdf = ctrl->device_->bdf();
  ctrl->info_.transport = std::string(ctrl->device_->kind());
  Status st = ctrl->device_->enable_dma();
  if (st.ok()) st = ctrl->bring_up();
  if (!st.ok()) {
    ctrl->shut_down_ = true;  // nothing to shut down cleanly
    return Status(st.code(), fmt::format("nvme {}: {}", ctrl->info_.bdf, st.message()));
  }
  return ctrl;
}

Status Controller::bring_up() {
  cap_ = device_->read64(spec::kRegCap);
  if (cap_ == ~uint64_t{0}) return Status(Errc::io_error, "the controller does not respond (CAP reads all ones)");
  dstrd_ = spec::cap_dstrd(cap_);
  info_.max_queue_entries = spec::cap_mqes(cap_);
  info_.ready_timeout_ms = std::max<uint32_t>(spec::cap_to_ms(cap_), 500);
  info_.version = device_->read32(spec::kRegVs);
  if (!spec::cap_css_nvm(cap_)) return Status(Errc::not_supported, "the controller lacks the NVM command set");
  if (spec::cap_mpsmin(cap_) != 0)
    return Status(Errc::not_supported, fmt::format("minimum memory page size {} is not 4 KiB", 4096u << spec::cap_mpsmin(cap_)));

  const uint32_t admin_entries = std::clamp<uint32_t>(options_.admin_queue_entries, 2, std::min(info_.max_queue_entries, 4096u));
  admin_ = std::make_unique<AdminQueue>(*device_, admin_entries, dstrd_);
  SLUICE_RETURN_IF_ERROR(admin_->init());
  SLUICE_RETURN_IF_ERROR(disable());
  SLUICE_RETURN_IF_ERROR(admin_->program());
  SLUICE_RETURN_IF_ERROR(enable());
  SLUICE_RETURN_IF_ERROR(identify());
  SLUICE_RETURN_IF_ERROR(set_queue_count());
  return Status::Ok();
}

Status Controller::disable() {
  const uint32_t cc = device_->read32(spec::kRegCc);
  if (cc & spec::kCcEnable) device_->write32(spec::kRegCc, cc & ~spec::kCcEnable);
  bool ok = wait_for([&] { return (device_->read32(spec::kRegCsts) & spec::kCstsRdy) == 0; }, info_.ready_timeout_ms);
  if (!ok)
    return Status(Errc::io_error, fmt::format("the controller did not become disabled within CAP.TO ({} ms)", info_.ready_timeout_ms));
  return Status::Ok();
}

Status Controller::enable() {
  const uint32_t cc = spec::kCcEnable | spec::cc_mps(0) | spec::cc_iosqes(6) | spec::cc_iocqes(4);
  device_->write32(spec::kRegCc, cc);
  uint32_t csts = 0;
  bool ok = wait_for(
      [&] {
        csts = device_->read32(spec::kRegCsts);
        return (csts & (spec::kCstsRdy | spec::kCstsCfs)) != 0;
      },
      info_.ready_timeout_ms);
  if (csts & spec::kCstsCfs) return Status(Errc::io_error, "the controller reports a fatal status (CSTS.CFS) after enable");
  if (!ok) return Status(Errc::io_error, fmt::format("the controller did not become ready within CAP.TO ({} ms)", info_.ready_timeout_ms));
  return Status::Ok();
}

Result<Completion> Controller::admin_sync(spec::Sqe& cmd, void* dma, size_t len) {
  if (shut_down_) return Status(Errc::aborted, "the controller is shut down");
  if (failed()) return Status(Errc::io_error, "the controller has failed; reset it");
  if (dma != nullptr) {
    if (len > 2 * kPage) return Status(Errc::invalid_argument, "admin data larger than 8 KiB");
    cmd.prp1 = device_->translate(dma);
    if (len > kPage) cmd.prp2 = device_->translate(static_cast<uint8_t*>(dma) + kPage);
    if (cmd.prp1 == env::kDmaBadIova) return Status(Errc::io_error, "admin buffer has no device address");
  }
  auto c = admin_->execute(cmd, dma, len, options_.admin_timeout_ms);
  if (!c.ok()) failed_.store(true, std::memory_order_release);  // the queue's state is unknown now
  return c;
}

Status Controller::identify() {
  AdminBuffer buf(kPage);
  if (buf.p == nullptr) return Status(Errc::no_space, "no DMA memory for Identify");
  spec::Sqe cmd = {};
  cmd.opc = spec::kAdminIdentify;
  cmd.cdw10 = spec::kCnsController;
  auto c = admin_sync(cmd, buf.p, kPage);
  if (!c.ok()) return c.status();
  SLUICE_RETURN_IF_ERROR(completion_status(*c, "Identify Controller"));

  const auto* d = static_cast<const uint8_t*>(buf.p);
  using spec::get;
  info_.vid = get<uint16_t>(d, spec::idc::kVid);
  info_.ssvid = get<uint16_t>(d, spec::idc::kSsvid);
  info_.serial = trimmed(d + spec::idc::kSn, 20);
  info_.model = trimmed(d + spec::idc::kMn, 40);
  info_.firmware = trimmed(d + spec::idc::kFr, 8);
  info_.subnqn = trimmed(d + spec::idc::kSubnqn, 256);
  info_.cntlid = get<uint16_t>(d, spec::idc::kCntlid);
  info_.namespace_count = get<uint32_t>(d, spec::idc::kNn);
  info_.oncs = get<uint16_t>(d, spec::idc::kOncs);
  info_.supports_dsm = info_.oncs & spec::idc::kOncsDsm;
  info_.supports_write_zeroes = info_.oncs & spec::idc::kOncsWriteZeroes;
  info_.volatile_write_cache = d[spec::idc::kVwc] & 1;
  info_.sgls = get<uint32_t>(d, spec::idc::kSgls);
  if (device_->fabrics() != nullptr) {
    // IOCCSZ counts 16-byte units of the whole capsule, the 64-byte SQE included.
    const uint32_t ioccsz = get<uint32_t>(d, spec::idc::kIoccsz);
    info_.in_capsule_bytes = ioccsz > 4 ? (ioccsz - 4) * 16 : 0;
  }
  const uint8_t mdts = d[spec::idc::kMdts];
  uint64_t limit = options_.max_transfer_bytes;
  if (mdts != 0) limit = std::min<uint64_t>(limit, uint64_t{kPage} << mdts);
  info_.max_transfer_bytes = static_cast<uint32_t>(std::max<uint64_t>(limit / kPage * kPage, kPage));
  if ((d[spec::idc::kSqes] & 0xf) > 6 || (d[spec::idc::kCqes] & 0xf) > 4)
    return Status(Errc::not_supported, "the controller needs larger queue entries than 64/16 bytes");

  // Active namespaces (CNS 02h, NVMe 1.1+); older controllers: probe 1..NN.
  std::vector<uint32_t> ids;
  spec::Sqe list = {};
  list.opc = spec::kAdminIdentify;
  list.cdw10 = spec::kCnsActiveNamespaces;
  std::memset(buf.p, 0, kPage);
  auto lc = admin_sync(list, buf.p, kPage);
  if (!lc.ok()) return lc.status();
  if (lc->ok()) {
    for (size_t i = 0; i < kPage / 4; ++i) {
      uint32_t id = get<uint32_t>(buf.p, i * 4);
      if (id == 0) break;
      ids.push_back(id);
    }
  } else {
    for (uint32_t id = 1; id <= std::min<uint32_t>(info_.namespace_count, 1024); ++id) ids.push_back(id);
  }
  namespaces_.clear();
  for (uint32_t id : ids) {
    auto ns = identify_namespace(id);
    if (!ns.ok()) return ns.status();
    if (ns->size_blocks != 0) namespaces_.push_back(*ns);
  }
  return Status::Ok();
}

Result<NamespaceInfo> Controller::identify_namespace(uint32_t nsid) {
  AdminBuffer buf(kPage);
  if (buf.p == nullptr) return Status(Errc::no_space, "no DMA memory for Identify");
  spec::Sqe cmd = {};
  cmd.opc = spec::kAdminIdentify;
  cmd.nsid = nsid;
  cmd.cdw10 = spec::kCnsNamespace;
  auto c = admin_sync(cmd, buf.p, kPage);
  if (!c.ok()) return c.status();
  SLUICE_RETURN_IF_ERROR(completion_status(*c, fmt::format("Identify Namespace {}", nsid)));
  const auto* d = static_cast<const uint8_t*>(buf.p);
  using spec::get;
  NamespaceInfo ns;
  ns.nsid = nsid;
  ns.size_blocks = get<uint64_t>(d, spec::idns::kNsze);
  ns.capacity_blocks = get<uint64_t>(d, spec::idns::kNcap);
  ns.used_blocks = get<uint64_t>(d, spec::idns::kNuse);
  const uint8_t format = d[spec::idns::kFlbas] & 0xf;
  const uint32_t lbaf = get<uint32_t>(d, spec::idns::kLbaf + 4 * format);
  ns.metadata_size = static_cast<uint16_t>(lbaf & 0xffff);
  const uint32_t lbads = (lbaf >> 16) & 0xff;
  if (ns.size_blocks != 0 && (lbads < 9 || lbads > 16))
    return Status(Errc::not_supported, fmt::format("namespace {}: LBA data size 2^{} is unsupported", nsid, lbads));
  ns.block_size = 1u << lbads;
  ns.deallocate_reads_zeroes = (d[spec::idns::kDlfeat] & 7) == 1;
  return ns;
}

Status Controller::set_queue_count() {
  const uint16_t want = std::max<uint16_t>(options_.io_queues_wanted, 1);
  spec::Sqe cmd = {};
  cmd.opc = spec::kAdminSetFeatures;
  cmd.cdw10 = spec::kFeatureNumberOfQueues;
  cmd.cdw11 = static_cast<uint32_t>(want - 1) | (static_cast<uint32_t>(want - 1) << 16);
  auto c = admin_sync(cmd, nullptr, 0);
  if (!c.ok()) return c.status();
  SLUICE_RETURN_IF_ERROR(completion_status(*c, "Set Features (Number of Queues)"));
  const uint32_t nsq = (c->dw0 & 0xffff) + 1, ncq = (c->dw0 >> 16) + 1;
  info_.io_queues = static_cast<uint16_t>(std::min({nsq, ncq, uint32_t{want}}));
  if (qid_used_.size() != info_.io_queues + 1u) qid_used_.resize(info_.io_queues + 1u, false);
  qid_used_[0] = true;  // the admin queue
  return Status::Ok();
}

std::vector<NamespaceInfo> Controller::namespaces() const {
  std::lock_guard lock(mu_);
  return namespaces_;
}

Result<NamespaceInfo> Controller::namespace_info(uint32_t nsid) const {
  std::lock_guard lock(mu_);
  for (const auto& ns : namespaces_)
    if (ns.nsid == nsid) return ns;
  return Status(Errc::not_found, fmt::format("nvme {}: no active namespace {}", info_.bdf, nsid));
}

Result<uint16_t> Controller::take_qid() {
  std::lock_guard lock(mu_);
  for (size_t q = 1; q < qid_used_.size(); ++q) {
    if (!qid_used_[q]) {
      qid_used_[q] = true;
      return static_cast<uint16_t>(q);
    }
  }
  return Status(Errc::busy, fmt::format("nvme {}: all {} I/O queues are in use", info_.bdf, info_.io_queues));
}

void Controller::give_qid(uint16_t qid) {
  std::lock_guard lock(mu_);
  if (qid < qid_used_.size()) qid_used_[qid] = false;
}

Status Controller::create_queue_pair(uint16_t qid, uint32_t entries, uint64_t sq_iova, uint64_t cq_iova) {
  std::lock_guard lock(mu_);
  const uint32_t size_field = (entries - 1) << 16;
  spec::Sqe cq = {};
  cq.opc = spec::kAdminCreateCq;
  cq.prp1 = cq_iova;
  cq.cdw10 = qid | size_field;
  cq.cdw11 = 1;  // physically contiguous, no interrupts: completions are polled
  auto c = admin_sync(cq, nullptr, 0);
  if (!c.ok()) return c.status();
  SLUICE_RETURN_IF_ERROR(completion_status(*c, fmt::format("Create I/O CQ {}", qid)));
  spec::Sqe sq = {};
  sq.opc = spec::kAdminCreateSq;
  sq.prp1 = sq_iova;
  sq.cdw10 = qid | size_field;
  sq.cdw11 = 1 | (uint32_t{qid} << 16);  // physically contiguous, CQID = qid
  c = admin_sync(sq, nullptr, 0);
  Status st = c.ok() ? completion_status(*c, fmt::format("Create I/O SQ {}", qid)) : c.status();
  if (!st.ok()) {
    spec::Sqe del = {};
    del.opc = spec::kAdminDeleteCq;
    del.cdw10 = qid;
    (void)admin_sync(del, nullptr, 0);
  }
  return st;
}

Status Controller::delete_queue_pair(uint16_t qid) {
  std::lock_guard lock(mu_);
  spec::Sqe sq = {};
  sq.opc = spec::kAdminDeleteSq;
  sq.cdw10 = qid;
  auto c = admin_sync(sq, nullptr, 0);
  if (!c.ok()) return c.status();
  SLUICE_RETURN_IF_ERROR(completion_status(*c, fmt::format("Delete I/O SQ {}", qid)));
  spec::Sqe cq = {};
  cq.opc = spec::kAdminDeleteCq;
  cq.cdw10 = qid;
  c = admin_sync(cq, nullptr, 0);
  if (!c.ok()) return c.status();
  return completion_status(*c, fmt::format("Delete I/O CQ {}", qid));
}

Result<SmartLog> Controller::smart_log(uint32_t nsid) {
  std::lock_guard lock(mu_);
  AdminBuffer buf(512);
  if (buf.p == nullptr) return Status(Errc::no_space, "no DMA memory for Get Log Page");
  spec::Sqe cmd = {};
  cmd.opc = spec::kAdminGetLogPage;
  cmd.nsid = nsid;
  cmd.cdw10 = spec::kLogSmart | ((512 / 4 - 1) << 16);
  auto c = admin_sync(cmd, buf.p, 512);
  if (!c.ok()) return c.status();
  SLUICE_RETURN_IF_ERROR(completion_status(*c, "Get Log Page (SMART / Health)"));
  const auto* d = static_cast<const uint8_t*>(buf.p);
  using spec::get;
  namespace s = spec::smart;
  SmartLog log;
  log.critical_warning = d[s::kCriticalWarning];
  log.temperature_kelvin = get<uint16_t>(d, s::kTemperature);
  log.available_spare = d[s::kAvailableSpare];
  log.spare_threshold = d[s::kSpareThreshold];
  log.percent_used = d[s::kPercentUsed];
  log.data_units_read = get<uint64_t>(d, s::kDataUnitsRead);
  log.data_units_written = get<uint64_t>(d, s::kDataUnitsWritten);
  log.host_reads = get<uint64_t>(d, s::kHostReads);
  log.host_writes = get<uint64_t>(d, s::kHostWrites);
  log.busy_minutes = get<uint64_t>(d, s::kBusyTime);
  log.power_cycles = get<uint64_t>(d, s::kPowerCycles);
  log.power_on_hours = get<uint64_t>(d, s::kPowerOnHours);
  log.unsafe_shutdowns = get<uint64_t>(d, s::kUnsafeShutdowns);
  log.media_errors = get<uint64_t>(d, s::kMediaErrors);
  log.error_log_entries = get<uint64_t>(d, s::kErrorLogEntries);
  return log;
}

Result<std::vector<ErrorLogEntry>> Controller::error_log(uint32_t max_entries) {
  std::lock_guard lock(mu_);
  const uint32_t n = std::clamp<uint32_t>(max_entries, 1, 2 * kPage / sizeof(spec::ErrorLogEntry));
  const size_t bytes = n * sizeof(spec::ErrorLogEntry);
  AdminBuffer buf(bytes);
  if (buf.p == nullptr) return Status(Errc::no_space, "no DMA memory for Get Log Page");
  spec::Sqe cmd = {};
  cmd.opc = spec::kAdminGetLogPage;
  cmd.cdw10 = spec::kLogError | static_cast<uint32_t>((bytes / 4 - 1) << 16);
  auto c = admin_sync(cmd, buf.p, bytes);
  if (!c.ok()) return c.status();
  SLUICE_RETURN_IF_ERROR(completion_status(*c, "Get Log Page (Error Information)"));
  std::vector<ErrorLogEntry> out;
  for (uint32_t i = 0; i < n; ++i) {
    spec::ErrorLogEntry e;
    std::memcpy(&e, static_cast<uint8_t*>(buf.p) + i * sizeof e, sizeof e);
    if (e.error_count == 0) continue;  // unused entry
    out.push_back({e.error_count, e.sqid, e.cid, static_cast<uint16_t>(e.status & ~1u), e.lba, e.nsid});
  }
  return out;
}

Result<bool> Controller::abort(uint16_t sqid, uint16_t cid) {
  std::lock_guard lock(mu_);
  spec::Sqe cmd = {};
  cmd.opc = spec::kAdminAbort;
  cmd.cdw10 = sqid | (uint32_t{cid} << 16);
  auto c = admin_sync(cmd, nullptr, 0);
  if (!c.ok()) return c.status();
  SLUICE_RETURN_IF_ERROR(completion_status(*c, fmt::format("Abort (SQ {} CID {})", sqid, cid)));
  return (c->dw0 & 1) == 0;
}

Result<Completion> Controller::admin_command(const spec::Sqe& cmd, void* data, size_t len, bool write) {
  std::lock_guard lock(mu_);
  AdminBuffer buf(len);
  if (len != 0 && buf.p == nullptr) return Status(Errc::no_space, "no DMA memory for the admin command");
  if (write && len != 0) std::memcpy(buf.p, data, len);
  spec::Sqe c = cmd;
  auto r = admin_sync(c, len != 0 ? buf.p : nullptr, len);
  if (r.ok() && !write && len != 0) std::memcpy(data, buf.p, len);
  return r;
}

Status Controller::reset() {
  std::lock_guard lock(mu_);
  if (shut_down_) return Status(Errc::aborted, "the controller is shut down");
  failed_.store(true, std::memory_order_release);
  log::notice("nvme {}: resetting the controller", info_.bdf);
  SLUICE_RETURN_IF_ERROR(disable());
  admin_->clear();
  SLUICE_RETURN_IF_ERROR(admin_->program());
  SLUICE_RETURN_IF_ERROR(enable());
  failed_.store(false, std::memory_order_release);
  Status st = set_queue_count();
  if (!st.ok()) {
    failed_.store(true, std::memory_order_release);
    return st;
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return Status::Ok();
}

Status Controller::shutdown() {
  std::lock_guard lock(mu_);
  if (shut_down_) return Status::Ok();
  shut_down_ = true;
  failed_.store(true, std::memory_order_release);
  const uint32_t cc = device_->read32(spec::kRegCc);
  if ((cc & spec::kCcEnable) == 0) return Status::Ok();
  device_->write32(spec::kRegCc, (cc & ~spec::kCcShnMask) | spec::kCcShnNormal);
  const uint64_t timeout = std::max<uint64_t>(info_.ready_timeout_ms, 2000);
  bool ok = wait_for(
      [&] { return (device_->read32(spec::kRegCsts) & spec::kCstsShstMask) == spec::kCstsShstComplete; }, timeout);
  if (!ok) return Status(Errc::io_error, fmt::format("shutdown did not complete within {} ms", timeout));
  return Status::Ok();
}

}  // namespace sluice::nvme
