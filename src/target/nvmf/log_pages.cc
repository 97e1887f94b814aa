// Get Log Page: error information, SMART / health, the changed namespace list, and the
// discovery log on a discovery controller; each read from an offset, for a length.
#include <algorithm>
#include <cstring>

#include "target/nvmf/nvmf_impl.h"

namespace sluice::nvmf {
namespace {

std::vector<uint8_t> error_log(const Controller& c) {
  std::vector<uint8_t> page(kErrorLogEntries * sizeof(sp::ErrorLogEntry));
  size_t i = 0;
  for (const auto& e : c.errors) std::memcpy(page.data() + i++ * sizeof e, &e, sizeof e);
  return page;
}

// Health from the bdevs' own statistics: what the hosts of every controller moved.
std::vector<uint8_t> smart_log(const Subsystem& s) {
  namespace sm = sp::smart;
  std::vector<uint8_t> page(512);
  uint64_t read_bytes = 0, written_bytes = 0, reads = 0, writes = 0, errors = 0;
  for (const auto& ns : s.namespaces) {
    if (!ns) continue;
    const bdev::IoStats st = ns->desc->bdev().stats();
    const auto& r = st.by_type[static_cast<int>(bdev::IoType::read)];
    const auto& w = st.by_type[static_cast<int>(bdev::IoType::write)];
    read_bytes += r.bytes.get();
    written_bytes += w.bytes.get();
    reads += r.ops.get();
    writes += w.ops.get();
    errors += r.errors.get() + w.errors.get();
  }
  uint8_t* d = page.data();
  sp::put<uint16_t>(d, sm::kTemperature, 293);  // Kelvin: there is no sensor to read
  d[sm::kAvailableSpare] = 100;
  d[sm::kSpareThreshold] = 10;
  // Data units are thousands of 512-byte units, rounded up.
  sp::put<uint64_t>(d, sm::kDataUnitsRead, (read_bytes / 512 + 999) / 1000);
  sp::put<uint64_t>(d, sm::kDataUnitsWritten, (written_bytes / 512 + 999) / 1000);
  sp::put<uint64_t>(d, sm::kHostReads, reads);
  sp::put<uint64_t>(d, sm::kHostWrites, writes);
  sp::put<uint64_t>(d, sm::kPowerCycles, 1);
  sp::put<uint64_t>(d, sm::kMediaErrors, errors);
  return page;
}

std::vector<uint8_t> changed_namespaces_log(Controller& c, bool retain) {
  std::vector<uint8_t> page(sp::kChangedNamespaceListMax * 4);
  auto& list = c.changed_namespaces;
  std::sort(list.begin(), list.end());
  if (list.size() > sp::kChangedNamespaceListMax) {
    sp::put<uint32_t>(page.data(), 0, 0xffffffff);  // too many: the host rescans them all
  } else {
    for (size_t i = 0; i < list.size(); ++i) sp::put<uint32_t>(page.data(), 4 * i, list[i]);
  }
  if (!retain) {
    // Read: the list starts over and the next change raises an event again.
    list.clear();
    c.ns_notice_masked = false;
  }
  return page;
}

}  // namespace

std::vector<uint8_t> discovery_log(const Target::State& target, std::string_view hostnqn) {
  namespace dl = sp::discovery;
  std::vector<uint8_t> page(dl::kHeaderSize);
  uint64_t records = 0;
  // A port is an address the target listens on: the subsystems reached through the same
  // address share its PORTID (numbered in the order the log first meets them).
  std::vector<const Listener*> ports;
  auto port_id = [&](const Listener& l) {
    for (size_t i = 0; i < ports.size(); ++i)
      if (*ports[i] == l) return static_cast<uint16_t>(i);
    ports.push_back(&l);
    return static_cast<uint16_t>(ports.size() - 1);
  };
  for (const auto& s : target.subsystems) {
    if (s->discovery || !s->host_allowed(hostnqn)) continue;
    for (const Listener& l : s->listeners) {
      page.resize(page.size() + dl::kEntrySize);
      uint8_t* e = page.data() + dl::kHeaderSize + records * dl::kEntrySize;
      e[dl::kTrtype] = l.trtype;
      e[dl::kAdrfam] = static_cast<uint8_t>(l.adrfam);
      e[dl::kSubtype] = dl::kSubtypeNvm;
      e[dl::kTreq] = dl::kTreqSecureChannelNotRequired;
      sp::put<uint16_t>(e, dl::kPortid, port_id(l));
      sp::put<uint16_t>(e, dl::kCntlid, dl::kDynamicCntlid);
      sp::put<uint16_t>(e, dl::kAsqsz, target.options.max_queue_depth);
      sp::put_ascii(e, dl::kTrsvcid, dl::kTrsvcidSize, l.trsvcid);
      sp::put_ascii(e, dl::kTraddr, dl::kTraddrSize, l.traddr);
      std::memcpy(e + dl::kSubnqn, s->nqn.data(), std::min<size_t>(s->nqn.size(), dl::kSubnqnSize - 1));
      // TSAS for TCP: SECTYPE 0, no security.
      ++records;
    }
  }
  sp::put<uint64_t>(page.data(), dl::kGenctr, target.discovery_generation);
  sp::put<uint64_t>(page.data(), dl::kNumrec, records);
  sp::put<uint16_t>(page.data(), dl::kRecfmt, 0);
  return page;
}

void get_log_page(Target::State& target, Controller& c, Request* req) {
  const sp::Sqe& sqe = req->sqe;
  const uint8_t lid = sqe.cdw10 & 0xff;
  const bool retain = sqe.cdw10 & (1u << 15);  // RAE: keep the event's log
  const uint64_t bytes = ((uint64_t{sqe.cdw11 & 0xffff} << 16 | (sqe.cdw10 >> 16)) + 1) * 4;
  const uint64_t offset = uint64_t{sqe.cdw13} << 32 | sqe.cdw12;
  std::vector<uint8_t> page;
  if (c.discovery) {
    if (lid != sp::kLogDiscovery) return QueuePair::Impl::finish(req, specific_status(sp::kScInvalidLogPage));
    page = discovery_log(target, c.hostnqn);
  } else if (lid == sp::kLogError) {
    page = error_log(c);
  } else if (lid == sp::kLogSmart && c.subsystem != nullptr) {
    if (sqe.nsid != 0 && sqe.nsid != 0xffffffff && c.subsystem->find_namespace(sqe.nsid) == nullptr)
      return QueuePair::Impl::finish(req, generic_status(sp::kScInvalidNamespace, true));
    page = smart_log(*c.subsystem);
  } else if (lid == sp::kLogChangedNamespaces) {
    page = changed_namespaces_log(c, retain);
  } else {
    return QueuePair::Impl::finish(req, specific_status(sp::kScInvalidLogPage));
  }
  if (offset % 4 != 0 || offset > page.size())
    return QueuePair::Impl::finish(req, generic_status(sp::kScInvalidField, true));
  // Beyond the log's end the host reads zeroes.
  const size_t n = std::min<uint64_t>({bytes, req->length, page.size() - offset});
  if (req->data != nullptr) {
    std::memset(req->data, 0, std::min<uint64_t>(bytes, req->length));
    std::memcpy(req->data, page.data() + offset, n);
  }
  QueuePair::Impl::finish(req, 0);
}

}  // namespace sluice::nvmf
