// The Target: its subsystems, hosts and listeners, changed on the home reactor only (the
// RPC methods will send their calls there), and the keep-alive sweep.
#include <algorithm>

#include <fmt/format.h>

#include "base/clock.h"
#include "target/nvmf/nvmf_impl.h"
#include "thread/thread.h"

namespace sluice::nvmf {
namespace {

Status not_home() {
  return Status(Errc::invalid_argument, "nvmf: the target is changed on its home reactor only");
}
Status no_subsystem(std::string_view nqn) {
  return Status(Errc::not_found, fmt::format("nvmf: no subsystem '{}'", nqn));
}

}  // namespace

uint64_t Target::State::now_ms() const {
  return options.now_ms ? options.now_ms() : clock::now_ns() / 1000000;
}

bool Target::State::on_home() const {
  thread::Reactor* r = thread::current_reactor();
  return r != nullptr && thread::reactor_id(r) == options.home_reactor;
}

Subsystem* Target::State::find(std::string_view nqn) const {
  for (auto& s : subsystems)
    if (s->nqn == nqn) return s.get();
  return nullptr;
}

Target::Target(TargetOptions options) : state_(std::make_shared<State>()) {
  state_->options = std::move(options);
  auto discovery = std::make_shared<Subsystem>();
  discovery->nqn = sp::kDiscoveryNqn;
  discovery->discovery = true;
  discovery->allow_any_host = true;
  discovery->serial = "SLUICEDISCOVERY";
  discovery->model = "Sluice NVMe-oF discovery";
  state_->subsystems.push_back(std::move(discovery));
}

Target::~Target() {
  // Controllers still referenced by queue pairs (which must be gone by now) would keep a
  // dangling subsystem pointer: clear it.
  for (auto& s : state_->subsystems)
    for (auto& c : s->controllers) c->subsystem = nullptr;
}

const TargetOptions& Target::options() const { return state_->options; }
uint64_t Target::now_ms() const { return state_->now_ms(); }

Status Target::add_subsystem(const SubsystemOptions& o) {
  if (!state_->on_home()) return not_home();
  SLUICE_RETURN_IF_ERROR(validate_nqn(o.nqn));
  if (state_->find(o.nqn)) return Status(Errc::exists, fmt::format("nvmf: subsystem '{}' exists", o.nqn));
  if (o.serial.empty() || o.serial.size() > 20 || o.model.empty() || o.model.size() > 40)
    return Status(Errc::invalid_argument, "nvmf: a serial number is 1..20 characters, a model number 1..40");
  if (o.max_namespaces == 0 || o.max_namespaces > 1024)
    return Status(Errc::invalid_argument, "nvmf: max_namespaces is 1..1024");
  auto s = std::make_shared<Subsystem>();
  s->nqn = o.nqn;
  s->serial = o.serial;
  s->model = o.model;
  s->allow_any_host = o.allow_any_host;
  s->namespaces.resize(o.max_namespaces);
  state_->subsystems.push_back(std::move(s));
  ++state_->discovery_generation;
  return Status::Ok();
}

Status Target::remove_subsystem(std::string_view nqn) {
  if (!state_->on_home()) return not_home();
  auto& all = state_->subsystems;
  auto it = std::find_if(all.begin() + 1, all.end(), [&](auto& s) { return s->nqn == nqn; });
  if (it == all.end()) return no_subsystem(nqn);
  std::shared_ptr<Subsystem> s = *it;
  all.erase(it);
  // The bdev handles close as the last I/O queue lets go of its channels to them.
  for (auto controllers = s->controllers; auto& c : controllers) state_->end_association(c);
  ++state_->discovery_generation;
  return Status::Ok();
}

Status Target::set_allow_any_host(std::string_view nqn, bool allow) {
  if (!state_->on_home()) return not_home();
  Subsystem* s = state_->find(nqn);
  if (s == nullptr || s->discovery) return no_subsystem(nqn);
  s->allow_any_host = allow;  // checked at Connect: hosts already connected stay
  ++state_->discovery_generation;
  return Status::Ok();
}

Status Target::add_host(std::string_view nqn, std::string_view hostnqn) {
  if (!state_->on_home()) return not_home();
  Subsystem* s = state_->find(nqn);
  if (s == nullptr || s->discovery) return no_subsystem(nqn);
  SLUICE_RETURN_IF_ERROR(validate_nqn(hostnqn));
  if (std::find(s->hosts.begin(), s->hosts.end(), hostnqn) != s->hosts.end())
    return Status(Errc::exists, fmt::format("nvmf: host '{}' is already allowed on '{}'", hostnqn, nqn));
  s->hosts.emplace_back(hostnqn);
  ++state_->discovery_generation;
  return Status::Ok();
}

Status Target::remove_host(std::string_view nqn, std::string_view hostnqn) {
  if (!state_->on_home()) return not_home();
  Subsystem* s = state_->find(nqn);
  if (s == nullptr || s->discovery) return no_subsystem(nqn);
  auto it = std::find(s->hosts.begin(), s->hosts.end(), hostnqn);
  if (it == s->hosts.end())
    return Status(Errc::not_found, fmt::format("nvmf: host '{}' is not allowed on '{}'", hostnqn, nqn));
  s->hosts.erase(it);
  ++state_->discovery_generation;
  return Status::Ok();
}

Status Target::add_listener(std::string_view nqn, const Listener& l) {
  if (!state_->on_home()) return not_home();
  Subsystem* s = state_->find(nqn);
  if (s == nullptr) return no_subsystem(nqn);
  if (l.traddr.empty() || l.traddr.size() > sp::discovery::kTraddrSize || l.trsvcid.empty() ||
      l.trsvcid.size() > sp::discovery::kTrsvcidSize)
    return Status(Errc::invalid_argument, "nvmf: a listener needs traddr (<= 256) and trsvcid (<= 32)");
  if (std::find(s->listeners.begin(), s->listeners.end(), l) != s->listeners.end())
    return Status(Errc::exists, fmt::format("nvmf: '{}' already listens on {}:{}", nqn, l.traddr, l.trsvcid));
  s->listeners.push_back(l);
  ++state_->discovery_generation;
  return Status::Ok();
}

Status Target::remove_listener(std::string_view nqn, const Listener& l) {
  if (!state_->on_home()) return not_home();
  Subsystem* s = state_->find(nqn);
  if (s == nullptr) return no_subsystem(nqn);
  auto it = std::find(s->listeners.begin(), s->listeners.end(), l);
  if (it == s->listeners.end())
    return Status(Errc::not_found, fmt::format("nvmf: '{}' does not listen on {}:{}", nqn, l.traddr, l.trsvcid));
  s->listeners.erase(it);
  ++state_->discovery_generation;
  return Status::Ok();
}

std::vector<std::string> Target::subsystems() const {
  std::vector<std::string> out;
  for (auto& s : state_->subsystems) out.push_back(s->nqn);
  return out;
}

Result<SubsystemInfo> Target::describe(std::string_view nqn) const {
  if (!state_->on_home()) return not_home();
  const Subsystem* s = state_->find(nqn);
  if (s == nullptr) return no_subsystem(nqn);
  SubsystemInfo info{s->nqn,   s->discovery,      s->serial,
                     s->model, s->allow_any_host, static_cast<uint32_t>(s->namespaces.size()),
                     s->hosts, s->listeners,      {}};
  for (const auto& ns : s->namespaces)
    if (ns) info.namespaces.push_back({ns->nsid, ns->bdev_name});
  return info;
}

std::vector<ControllerInfo> Target::controllers(std::string_view nqn) const {
  std::vector<ControllerInfo> out;
  if (Subsystem* s = state_->find(nqn))
    for (auto& c : s->controllers) out.push_back({s->nqn, c->hostnqn, c->cntlid});
  return out;
}

std::vector<ControllerInfo> Target::check_keep_alive(uint64_t now_ms) {
  std::vector<ControllerInfo> expired;
  if (!state_->on_home()) return expired;
  for (auto& s : state_->subsystems) {
    for (auto& c : s->controllers) {
      if (c->kato_ms == 0 || c->keep_alive_expired || now_ms < c->last_keep_alive_ms + c->kato_ms) continue;
      c->keep_alive_expired = true;
      c->csts |= sp::kCstsCfs;
      expired.push_back({s->nqn, c->hostnqn, c->cntlid});
    }
  }
  return expired;
}

}  // namespace sluice::nvmf
