// Subsystems' namespaces: added and removed on the home reactor (or by a bdev's hot-remove,
// which sends itself there), each change announced to the controllers and to the I/O queues.
#include <algorithm>

#include <fmt/format.h>

#include "base/log.h"
#include "target/nvmf/nvmf_impl.h"
#include "thread/thread.h"

namespace sluice::nvmf {

bool Subsystem::host_allowed(std::string_view hostnqn) const {
  return allow_any_host || std::find(hosts.begin(), hosts.end(), hostnqn) != hosts.end();
}

Namespace* Subsystem::find_namespace(uint32_t nsid) const {
  if (nsid == 0 || nsid > namespaces.size()) return nullptr;
  return namespaces[nsid - 1].get();
}

std::shared_ptr<Controller> Subsystem::find_controller(uint16_t cntlid) const {
  for (auto& c : controllers)
    if (c->cntlid == cntlid) return c;
  return nullptr;
}

uint16_t Subsystem::allocate_cntlid() {
  for (uint32_t tries = 0; tries < kMaxCntlid; ++tries) {
    const uint16_t id = next_cntlid;
    next_cntlid = next_cntlid == kMaxCntlid ? 1 : next_cntlid + 1;
    if (!find_controller(id)) return id;
  }
  return 0;
}

void Target::State::namespace_changed(Subsystem& s, uint32_t nsid, const std::shared_ptr<Namespace>& ns) {
  for (auto& c : s.controllers) {
    auto& changed = c->changed_namespaces;
    if (std::find(changed.begin(), changed.end(), nsid) == changed.end()) changed.push_back(nsid);
    if ((c->async_event_config & sp::kAecNamespaceAttributeNotices) && !c->ns_notice_masked) {
      c->ns_notice_masked = true;
      raise_event(*c, sp::async_event(sp::kAsyncEventTypeNotice, sp::kAsyncEventNamespaceAttributeChanged,
                                      sp::kLogChangedNamespaces));
    }
    for (size_t qid = 1; qid < c->queues.size(); ++qid) {
      std::shared_ptr<QueueLink> link = c->queues[qid];
      if (!link) continue;
      Status st = thread::send_message(link->reactor, [link, nsid, ns] {
        if (link->qp != nullptr) link->qp->impl().set_namespace(nsid, ns);
      });
      if (!st.ok()) log::warn("nvmf: telling queue {} of controller {} about namespace {}: {}", qid, c->cntlid, nsid, st.to_string());
    }
  }
}

Result<uint32_t> Target::add_namespace(std::string_view nqn, const NamespaceOptions& o) {
  if (!state_->on_home()) return Status(Errc::invalid_argument, "nvmf: the target is changed on its home reactor only");
  Subsystem* s = state_->find(nqn);
  if (s == nullptr || s->discovery) return Status(Errc::not_found, fmt::format("nvmf: no subsystem '{}'", nqn));
  uint32_t nsid = o.nsid;
  if (nsid == 0) {
    auto free = std::find(s->namespaces.begin(), s->namespaces.end(), nullptr);
    if (free == s->namespaces.end())
      return Status(Errc::no_space, fmt::format("nvmf: subsystem '{}' has no free namespace ID", nqn));
    nsid = static_cast<uint32_t>(free - s->namespaces.begin()) + 1;
  } else if (nsid > s->namespaces.size()) {
    return Status(Errc::invalid_argument,
                  fmt::format("nvmf: NSID {} beyond the {} namespaces of '{}'", nsid, s->namespaces.size(), nqn));
  } else if (s->namespaces[nsid - 1]) {
    return Status(Errc::exists, fmt::format("nvmf: '{}' already has namespace {}", nqn, nsid));
  }
  auto ns = std::make_shared<Namespace>();
  ns->nsid = nsid;
  ns->bdev_name = o.bdev;
  bdev::OpenOptions open;
  open.write = true;
  // Hot-remove runs on whatever thread removed the bdev: it only sends the removal home.
  std::weak_ptr<State> weak_state = state_;
  std::weak_ptr<Namespace> weak_ns = ns;
  std::string subnqn(nqn);
  const uint32_t home = state_->options.home_reactor;
  open.on_remove = [weak_state, weak_ns, subnqn, home] {
    Status st = thread::send_message(home, [weak_state, weak_ns, subnqn] {
      auto state = weak_state.lock();
      auto gone = weak_ns.lock();
      if (!state || !gone) return;
      Subsystem* sub = state->find(subnqn);
      if (sub == nullptr || sub->find_namespace(gone->nsid) != gone.get()) return;
      log::notice("nvmf: bdev {} was removed: namespace {} of {} goes", gone->bdev_name, gone->nsid, subnqn);
      sub->namespaces[gone->nsid - 1].reset();
      state->namespace_changed(*sub, gone->nsid, nullptr);
    });
    if (!st.ok()) log::error("nvmf: hot-remove of a namespace of {}: {}", subnqn, st.to_string());
  };
  auto desc = bdev::open(o.bdev, open);
  if (!desc.ok()) return desc.status();
  ns->desc = std::move(desc.value());
  ns->geometry = ns->desc->geometry();
  derive_namespace_ids(*ns);
  s->namespaces[nsid - 1] = ns;
  state_->namespace_changed(*s, nsid, ns);
  return nsid;
}

Status Target::remove_namespace(std::string_view nqn, uint32_t nsid) {
  if (!state_->on_home()) return Status(Errc::invalid_argument, "nvmf: the target is changed on its home reactor only");
  Subsystem* s = state_->find(nqn);
  if (s == nullptr || s->discovery) return Status(Errc::not_found, fmt::format("nvmf: no subsystem '{}'", nqn));
  if (s->find_namespace(nsid) == nullptr)
    return Status(Errc::not_found, fmt::format("nvmf: '{}' has no namespace {}", nqn, nsid));
  s->namespaces[nsid - 1].reset();
  state_->namespace_changed(*s, nsid, nullptr);
  return Status::Ok();
}

}  // namespace sluice::nvmf
