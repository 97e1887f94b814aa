// The daemon's lifecycle: start reactors, apply the config, serve RPC, wait for a signal,
// shut down in order.
#include <signal.h>

#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "base/log.h"
#include "daemon/daemon.h"
#include "thread/thread.h"

namespace sluice::daemon {
namespace {

Result<rpc::Json> read_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status{Errc::not_found, fmt::format("cannot open config {}", path)};
  std::stringstream text;
  text << in.rdbuf();
  rpc::Json config = rpc::Json::parse(text.str(), nullptr, false);
  if (config.is_discarded()) return Status{Errc::invalid_argument, fmt::format("config {} is not valid JSON", path)};
  return config;
}

int wait_for_signal(const sigset_t& set) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) == 0) return sig;
  }
}

}  // namespace

Status serve(const ServeOptions& options, const std::vector<Module>& modules) {
  // Before any thread exists, so that every thread inherits the mask and only sigwait()
  // below takes these signals.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  rpc::Registry registry;
  for (const Module& m : modules) m.add_methods(registry);

  std::optional<rpc::Json> config;
  if (!options.config_path.empty()) {
    auto c = read_config(options.config_path);
    if (!c.ok()) return c.status();
    config = std::move(*c);
  }

  thread::App app(thread::AppOptions{.cores = options.cores});
  SLUICE_RETURN_IF_ERROR(app.start());
  auto shutdown = [&](Status first) {
    for (auto it = modules.rbegin(); it != modules.rend(); ++it)
      if (it->shutdown) it->shutdown();
    delete_created_bdevs();
    Status st = app.shutdown();
    return first.ok() ? st : first;
  };

  if (config) {
    if (Status st = registry.load_config(*config); !st.ok())
      return shutdown(Status{st.code(), fmt::format("{}: {}", options.config_path, st.message())});
  }
  rpc::Server server(registry, rpc::ServerOptions{.socket_path = options.rpc_socket});
  if (Status st = server.start(); !st.ok()) return shutdown(st);
  log::notice("serve: reactors on cores {}, RPC on {}", options.cores, options.rpc_socket);
  if (options.on_ready) options.on_ready();

  const int sig = wait_for_signal(set);
  log::notice("serve: {} received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
  return shutdown({});
}

}  // namespace sluice::daemon
