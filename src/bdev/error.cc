// The error bdev: forwards every request to its base unless the injection rule (or dead
// mode) says it fails. See error_inject.h for the rules.
#include <array>
#include <atomic>
#include <mutex>
#include <new>
#include <vector>

#include <fmt/format.h>

#include "bdev/channel.h"
#include "bdev/error_inject.h"
#include "bdev/stacked.h"

namespace sluice::bdev {

namespace {

uint64_t splitmix64(uint64_t seed, uint64_t k) {
  uint64_t z = seed + (k + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr uint64_t kAlways = uint64_t{1} << 53;  // a 53-bit draw is always below this

}  // namespace

// A rule as the data path sees it: the settings never change after publication; the budgets
// count down atomically.
struct ActiveRule {
  ErrorRule rule;
  uint64_t threshold = kAlways;  // a candidate fails when its 53-bit draw is below this
  std::atomic<uint64_t> skip_left{0};
  std::atomic<uint64_t> fail_left{0};
  std::atomic<uint64_t> draws{0};
};

struct Verdict {
  Errc status = Errc::ok;
  bool after_io = false;
};

struct ErrorState {
  std::string name;
  std::atomic<ActiveRule*> rule{nullptr};
  std::atomic<uint8_t> dead{0};  // an Errc; 0 while alive
  std::array<std::atomic<uint64_t>, kIoTypes> injected{};

  std::mutex control_mu;  // control path only: owns the rules
  // Every rule ever published stays allocated until the device state goes, so a request
  // that loaded an old pointer never reads freed memory. Rules are few and small.
  std::vector<std::unique_ptr<ActiveRule>> rules;

  void count(IoType t) { injected[static_cast<int>(t)].fetch_add(1, std::memory_order_relaxed); }

  Verdict decide(IoType t) {
    if (uint8_t d = dead.load(std::memory_order_relaxed); d != 0) [[unlikely]] {
      count(t);
      return {static_cast<Errc>(d), false};
    }
    ActiveRule* r = rule.load(std::memory_order_acquire);
    if (r == nullptr || (r->rule.types & io_bit(t)) == 0) [[likely]]
      return {};
    for (uint64_t s = r->skip_left.load(std::memory_order_relaxed); s > 0;)
      if (r->skip_left.compare_exchange_weak(s, s - 1, std::memory_order_relaxed)) return {};
    const bool limited = r->rule.count != ErrorRule::kUnlimited;
    if (limited && r->fail_left.load(std::memory_order_relaxed) == 0) return {};
    if (r->threshold != kAlways) {
      uint64_t k = r->draws.fetch_add(1, std::memory_order_relaxed);
      if ((splitmix64(r->rule.seed, k) >> 11) >= r->threshold) return {};
    }
    if (limited) {
      uint64_t c = r->fail_left.load(std::memory_order_relaxed);
      do {
        if (c == 0) return {};
      } while (!r->fail_left.compare_exchange_weak(c, c - 1, std::memory_order_relaxed));
    }
    count(t);
    return {r->rule.status, r->rule.after_io};
  }
};

namespace {

// Lives in the request's driver area while the base works on it.
struct ForwardCtx : BaseOp {
  BdevIo* io = nullptr;
  Errc inject = Errc::ok;
};
static_assert(sizeof(ForwardCtx) <= BdevIo::kDriverBytes, "ForwardCtx must fit a request's driver area");

class ErrorQueue final : public StackedQueue {
 public:
  ErrorQueue(StackedBdev& owner, BdevChannel* base_ch, ErrorState& state)
      : StackedQueue(owner, base_ch), state_(state) {}

  void submit(BdevIo* io) override {
    Verdict v = state_.decide(io->type);
    if (v.status != Errc::ok && !v.after_io) {
      io->channel->complete(io, v.status);
      return;
    }
    auto* ctx = new (io->driver) ForwardCtx();
    ctx->io = io;
    ctx->inject = v.status;
    forward(io, ctx, &ErrorQueue::done);
  }

 private:
  static void done(BaseOp* op, Errc status) {
    auto* ctx = static_cast<ForwardCtx*>(op);
    ctx->io->channel->complete(ctx->io, ctx->inject != Errc::ok ? ctx->inject : status);
  }

  ErrorState& state_;
};

class ErrorBdev final : public StackedBdev {
 public:
  ErrorBdev(std::string name, Base base)
      : StackedBdev(name, "error", std::move(base)), state_(std::make_shared<ErrorState>()) {
    state_->name = std::move(name);
  }

  Result<std::unique_ptr<BackendQueue>> create_queue() override {
    auto ch = get_base_channel();
    if (!ch.ok()) return ch.status();
    return std::unique_ptr<BackendQueue>(new ErrorQueue(*this, ch.value(), *state_));
  }

  const std::shared_ptr<ErrorState>& state() const { return state_; }

 private:
  std::shared_ptr<ErrorState> state_;
};

}  // namespace

Result<std::shared_ptr<Bdev>> make_error_bdev(const SpecArgs& args) {
  SLUICE_RETURN_IF_ERROR(args.check_known({}));
  auto base = StackedBdev::create_base(args);
  if (!base.ok()) return base.status();
  return std::shared_ptr<Bdev>(new ErrorBdev(args.name, std::move(base.value())));
}

// ---- ErrorRule / ErrorInjector ------------------------------------------------------------

ErrorRule ErrorRule::nth(uint32_t types, uint64_t n, Errc status) {
  ErrorRule r;
  r.types = types;
  r.status = status;
  r.skip = n > 0 ? n - 1 : 0;
  r.count = 1;
  return r;
}

ErrorRule ErrorRule::next(uint32_t types, uint64_t k, Errc status) {
  ErrorRule r;
  r.types = types;
  r.status = status;
  r.count = k;
  return r;
}

ErrorRule ErrorRule::random(uint32_t types, double p, uint64_t seed, Errc status) {
  ErrorRule r;
  r.types = types;
  r.status = status;
  r.probability = p;
  r.seed = seed;
  return r;
}

Result<ErrorInjector> ErrorInjector::stack(std::string_view base_name, std::string_view name) {
  if (name.empty()) return Status(Errc::invalid_argument, "an error bdev needs a name");
  auto base = StackedBdev::open_base(name, base_name);
  if (!base.ok()) return base.status();
  auto dev = std::shared_ptr<ErrorBdev>(new ErrorBdev(std::string(name), std::move(base.value())));
  SLUICE_RETURN_IF_ERROR(register_bdev(dev));
  return ErrorInjector(dev->state());
}

Result<ErrorInjector> ErrorInjector::find(std::string_view name) {
  auto dev = bdev::find(name);
  if (!dev) return Status(Errc::not_found, fmt::format("no bdev named {}", name));
  auto* err = dynamic_cast<ErrorBdev*>(dev.get());
  if (err == nullptr) return Status(Errc::invalid_argument, fmt::format("bdev {} is not an error bdev", name));
  return ErrorInjector(err->state());
}

const std::string& ErrorInjector::name() const { return state_->name; }

Status ErrorInjector::set_rule(const ErrorRule& rule) {
  if (rule.status == Errc::ok) return Status(Errc::invalid_argument, "an error rule needs a failure status");
  if (rule.types == 0 || (rule.types & ~kAllIoTypes) != 0)
    return Status(Errc::invalid_argument, fmt::format("error rule: bad type mask {:#x}", rule.types));
  if (!(rule.probability >= 0.0 && rule.probability <= 1.0))
    return Status(Errc::invalid_argument, fmt::format("error rule: probability {} is not in [0, 1]", rule.probability));
  auto active = std::make_unique<ActiveRule>();
  active->rule = rule;
  if (rule.probability < 1.0) active->threshold = static_cast<uint64_t>(rule.probability * static_cast<double>(kAlways));
  active->skip_left.store(rule.skip, std::memory_order_relaxed);
  active->fail_left.store(rule.count, std::memory_order_relaxed);
  std::lock_guard lock(state_->control_mu);
  state_->rule.store(active.get(), std::memory_order_release);
  state_->rules.push_back(std::move(active));
  return Status::Ok();
}

void ErrorInjector::clear_rule() {
  std::lock_guard lock(state_->control_mu);
  state_->rule.store(nullptr, std::memory_order_release);
}

Status ErrorInjector::set_dead(Errc status) {
  if (status == Errc::ok) return Status(Errc::invalid_argument, "dead mode needs a failure status");
  state_->dead.store(static_cast<uint8_t>(status), std::memory_order_relaxed);
  return Status::Ok();
}

void ErrorInjector::revive() { state_->dead.store(0, std::memory_order_relaxed); }

bool ErrorInjector::dead() const { return state_->dead.load(std::memory_order_relaxed) != 0; }

ErrorCounts ErrorInjector::counts() const {
  ErrorCounts c;
  for (int i = 0; i < kIoTypes; ++i) {
    c.by_type[i] = state_->injected[i].load(std::memory_order_relaxed);
    c.injected += c.by_type[i];
  }
  std::lock_guard lock(state_->control_mu);
  if (ActiveRule* r = state_->rule.load(std::memory_order_acquire)) c.rule_left = r->fail_left.load(std::memory_order_relaxed);
  return c;
}

void ErrorInjector::reset_counts() {
  for (auto& n : state_->injected) n.store(0, std::memory_order_relaxed);
}

}  // namespace sluice::bdev
