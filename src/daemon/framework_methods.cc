// Methods about the daemon itself: what it offers, its version, its reactors, its config.
#include <cstdio>

#include <fmt/format.h>

#include "base/clock.h"
#include "daemon/daemon.h"
#include "thread/thread.h"

#ifndef SLUICE_VERSION
#error "SLUICE_VERSION must be defined by the build"
#endif

namespace sluice::daemon {
namespace {

using rpc::Json;
using rpc::Params;

Json version() {
  unsigned major = 0, minor = 0, patch = 0;
  std::sscanf(SLUICE_VERSION, "%u.%u.%u", &major, &minor, &patch);
  return Json{{"version", "sluice " SLUICE_VERSION},
              {"fields", {{"major", major}, {"minor", minor}, {"patch", patch}, {"suffix", ""}}}};
}

// One entry per reactor. Sluice's reactors count loop iterations, not CPU ticks: busy and
// idle are iterations that found work and iterations that did not.
Json reactors(const std::vector<int>& cores, const char* list_name) {
  Json list = Json::array();
  for (uint32_t id = 0; id < thread::reactor_count(); ++id) {
    auto s = thread::reactor_stats(id);
    if (!s.ok()) continue;
    list.push_back({{"lcore", id < cores.size() ? cores[id] : -1},
                    {"id", id},
                    {"name", fmt::format("reactor_{}", id)},
                    {"busy", s->busy_iterations},
                    {"idle", s->iterations - s->busy_iterations},
                    {"messages", s->messages},
                    {"sleeps", s->sleeps},
                    {"io_sleeps", s->io_sleeps},
                    {"wakeups", s->wakeups}});
  }
  return Json{{"tick_rate", static_cast<uint64_t>(clock::ticks_per_second())}, {list_name, std::move(list)}};
}

}  // namespace

Module framework_module(const std::vector<int>& cores) {
  return Module{"framework",
                [cores](rpc::Registry& r) {
                  const rpc::Registry* registry = &r;
                  (void)r.add("rpc_get_methods", [registry](const Params& p) {
                    p.raw("current");  // SPDK's startup-state filter: every Sluice method runs at runtime
                    p.raw("include_aliases");
                    p.done();
                    return Json(registry->methods());
                  });
                  (void)r.add("spdk_get_version", [](const Params& p) {
                    p.done();
                    return version();
                  });
                  (void)r.add("sluice_get_version", [](const Params& p) {
                    p.done();
                    return version();
                  });
                  (void)r.add("framework_get_reactors", [cores](const Params& p) {
                    p.done();
                    return reactors(cores, "reactors");
                  });
                  (void)r.add("thread_get_stats", [cores](const Params& p) {
                    p.done();
                    return reactors(cores, "threads");
                  });
                  (void)r.add("save_config", [registry](const Params& p) {
                    p.done();
                    return registry->save_config();
                  });
                },
                nullptr};
}

}  // namespace sluice::daemon
