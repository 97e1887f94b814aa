// `sluice lvol`: logical volume stores and their volumes (src/lvol/lvol.h,
// docs/format/lvol.md). A store lives on a device, so every command names the device (a
// spec or a plain path, as for `sluice blob`); each command loads the store, does one thing,
// and unloads it, so it is durable when the command returns. A volume is then usable by any
// command that takes device specs as lvol:DEVICE-SPEC/VOLUME, e.g.
// `sluice perf -T lvol:uring:/tmp/img/db`.
#include <cstdlib>
#include <functional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/size.h"
#include "blobtool/device.h"
#include "blobtool/format_guard.h"
#include "commands.h"
#include "lvol/lvol.h"

namespace sluice::cli {
namespace {

using blobtool::Device;

struct LvolArgs {
  std::string device;
  std::vector<std::string> devices;  // list-stores
  std::string store_device, store_name;  // create-store DEVICE NAME
  std::string volume;                    // the volume (or snapshot) a command acts on
  std::string size;                      // create, resize
  std::string new_name;                  // snapshot, clone, rename: the name it makes
  std::vector<std::string> more;     // list-stores: devices after the options
  std::string cluster_size = "1M";
  bool thin = false;
  bool force = false;
  bool json = false;
};

std::string volume_spec(const Device& dev, const std::string& volume) { return fmt::format("lvol:{}/{}", dev.spec(), volume); }

nlohmann::json volume_json(const Device& dev, const lvol::VolumeInfo& v) {
  return {{"name", v.name},
          {"bdev", v.bdev_name},
          {"spec", volume_spec(dev, v.name)},
          {"size_bytes", v.size_bytes},
          {"allocated_bytes", v.allocated_bytes},
          {"thin", v.thin},
          {"snapshot", v.snapshot},
          {"parent", v.parent.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.parent)},
          {"clones", v.clones}};
}

nlohmann::json store_json(const Device& dev, const lvol::StoreInfo& s) {
  return {{"name", s.name},
          {"uuid", s.uuid},
          {"device", dev.spec()},
          {"cluster_size", s.cluster_size},
          {"block_size", s.block_size},
          {"total_bytes", s.total_bytes},
          {"free_bytes", s.free_bytes},
          {"volumes", s.volumes}};
}

std::string volume_line(const Device& dev, const lvol::VolumeInfo& v) {
  std::string flags = v.snapshot ? "snapshot" : v.thin ? "thin" : "thick";
  return fmt::format("volume {}: {}, {} allocated, {}{}; spec {}", v.name, format_size(v.size_bytes),
                     format_size(v.allocated_bytes), flags, v.parent.empty() ? "" : ", clone of " + v.parent,
                     volume_spec(dev, v.name));
}

Result<uint64_t> size_arg(const std::string& text) {
  auto v = parse_size(text);
  if (!v.ok()) return Status(Errc::invalid_argument, fmt::format("size '{}': {}", text, v.status().message()));
  if (*v == 0) return Status(Errc::invalid_argument, "size must be at least one byte");
  return v;
}

// Loads the store on `spec`, runs `op` on it, unloads it (durably) and reports.
int with_store(std::string_view cmd, const std::string& spec,
               const std::function<int(const Device&, lvol::LvolStore&)>& op) {
  auto dev = Device::create(spec);
  if (!dev.ok()) return fail(cmd, exit_code_for(dev.status()), dev.status().message());
  auto store = lvol::LvolStore::load((*dev)->bdev_name());
  if (!store.ok()) return fail(cmd, exit_code_for(store.status()), store.status().message());
  int rc = op(**dev, **store);
  if (Status st = (*store)->unload(); !st.ok()) {
    (*store)->abandon();  // what was done is durable already (each operation syncs); nothing more to write
    return fail(cmd, kExitFailure, st.message());
  }
  return rc;
}

int result(std::string_view cmd, const Status& st, const std::string& done) {
  if (!st.ok()) return fail(cmd, exit_code_for(st), st.message());
  fmt::print("{}\n", done);
  return kExitOk;
}

int run_create_store(const LvolArgs& a) {
  constexpr std::string_view cmd = "lvol create-store";
  std::string spec = a.device, name = a.store_device;  // with --device, the one positional is the name
  if (spec.empty()) {
    spec = a.store_device;
    name = a.store_name;
  } else if (!a.store_name.empty()) {
    return fail(cmd, kExitUsage, "with --device, give only the store NAME");
  }
  if (spec.empty() || name.empty()) return fail(cmd, kExitUsage, "want DEVICE NAME (or --device DEVICE NAME)");
  if (Status st = lvol::check_name(name, "store name"); !st.ok()) return fail(cmd, kExitUsage, st.message());
  auto cs = blobtool::parse_cluster_size(a.cluster_size);
  if (!cs.ok()) return fail(cmd, kExitUsage, cs.status().message());
  auto dev = Device::create(spec);
  if (!dev.ok()) return fail(cmd, exit_code_for(dev.status()), dev.status().message());
  auto store = lvol::LvolStore::create((*dev)->bdev_name(), name, static_cast<uint32_t>(*cs), a.force);
  if (!store.ok()) return fail(cmd, exit_code_for(store.status()), blobtool::explain_refusal(store.status()).message());
  const auto info = (*store)->info();
  if (Status st = (*store)->unload(); !st.ok()) {
    (*store)->abandon();
    return fail(cmd, kExitFailure, st.message());
  }
  fmt::print("created lvol store {} ({}) on {}: {} in clusters of {}\n", info.name, info.uuid, (*dev)->spec(),
             format_size(info.total_bytes), format_size(info.cluster_size));
  return kExitOk;
}

int run_list_stores(const LvolArgs& a) {
  constexpr std::string_view cmd = "lvol list-stores";
  std::vector<std::string> specs = a.devices;
  specs.insert(specs.end(), a.more.begin(), a.more.end());
  if (specs.empty()) return fail(cmd, kExitUsage, "name at least one device");
  nlohmann::json all = nlohmann::json::array();
  int rc = kExitOk;
  if (!a.json)
    fmt::print("{:<20} {:<36} {:>8} {:>9} {:>9} {:>8}  {}\n", "NAME", "UUID", "CLUSTER", "TOTAL", "FREE", "VOLUMES",
               "DEVICE");
  for (const auto& spec : specs) {
    int one = with_store(cmd, spec, [&](const Device& dev, lvol::LvolStore& s) {
      auto i = s.info();
      if (a.json) all.push_back(store_json(dev, i));
      else
        fmt::print("{:<20} {:<36} {:>8} {:>9} {:>9} {:>8}  {}\n", i.name, i.uuid, format_size(i.cluster_size),
                   format_size(i.total_bytes), format_size(i.free_bytes), i.volumes, dev.spec());
      return kExitOk;
    });
    if (one != kExitOk) rc = one;
  }
  if (a.json) print_json(all);
  return rc;
}

int run_list(const LvolArgs& a) {
  constexpr std::string_view cmd = "lvol list";
  return with_store(cmd, a.device, [&](const Device& dev, lvol::LvolStore& s) {
    auto info = s.info();
    auto vols = s.list_volumes();
    if (a.json) {
      nlohmann::json v = nlohmann::json::array();
      for (const auto& vi : vols) v.push_back(volume_json(dev, vi));
      print_json({{"store", store_json(dev, info)}, {"volumes", v}});
      return kExitOk;
    }
    fmt::print("lvol store {} ({}) on {}: {} volume(s), {} of {} free, clusters of {}\n", info.name, info.uuid,
               dev.spec(), info.volumes, format_size(info.free_bytes), format_size(info.total_bytes),
               format_size(info.cluster_size));
    if (vols.empty()) return kExitOk;
    fmt::print("{:<24} {:>9} {:>9}  {:<8} {:<24} {}\n", "NAME", "SIZE", "ALLOC", "TYPE", "PARENT", "CLONES");
    for (const auto& v : vols) {
      std::string clones;
      for (const auto& c : v.clones) clones += (clones.empty() ? "" : ",") + c;
      fmt::print("{:<24} {:>9} {:>9}  {:<8} {:<24} {}\n", v.name, format_size(v.size_bytes),
                 format_size(v.allocated_bytes), v.snapshot ? "snapshot" : v.thin ? "thin" : "thick",
                 v.parent.empty() ? "-" : v.parent, clones.empty() ? "-" : clones);
    }
    return kExitOk;
  });
}

int run_create(const LvolArgs& a) {
  constexpr std::string_view cmd = "lvol create";
  auto size = size_arg(a.size);
  if (!size.ok()) return fail(cmd, kExitUsage, size.status().message());
  return with_store(cmd, a.device, [&](const Device& dev, lvol::LvolStore& s) {
    auto v = s.create_volume(a.volume, *size, a.thin);
    if (!v.ok()) return fail(cmd, exit_code_for(v.status()), v.status().message());
    fmt::print("created {}\n", volume_line(dev, *v));
    return kExitOk;
  });
}

int run_resize(const LvolArgs& a) {
  constexpr std::string_view cmd = "lvol resize";
  auto size = size_arg(a.size);
  if (!size.ok()) return fail(cmd, kExitUsage, size.status().message());
  return with_store(cmd, a.device, [&](const Device& dev, lvol::LvolStore& s) {
    Status st = s.resize_volume(a.volume, *size);
    if (!st.ok()) return fail(cmd, exit_code_for(st), st.message());
    auto v = s.volume(a.volume);
    return result(cmd, v.status(), v.ok() ? "resized " + volume_line(dev, *v) : "");
  });
}

int run_snapshot_or_clone(const LvolArgs& a, bool snapshot) {
  const std::string_view cmd = snapshot ? "lvol snapshot" : "lvol clone";
  return with_store(cmd, a.device, [&](const Device& dev, lvol::LvolStore& s) {
    auto v = snapshot ? s.snapshot_volume(a.volume, a.new_name) : s.clone_volume(a.volume, a.new_name);
    if (!v.ok()) return fail(cmd, exit_code_for(v.status()), v.status().message());
    fmt::print("created {}\n", volume_line(dev, *v));
    return kExitOk;
  });
}

// delete, rename, inflate, decouple: one call, one line.
int run_simple(const LvolArgs& a, std::string_view cmd, const std::function<Status(lvol::LvolStore&)>& op,
               const std::function<std::string()>& done) {
  return with_store(cmd, a.device, [&](const Device&, lvol::LvolStore& s) { return result(cmd, op(s), done()); });
}

int run_lvol(const LvolArgs& args, CLI::App* create_store, CLI::App* list_stores, CLI::App* list, CLI::App* create,
             CLI::App* resize, CLI::App* del, CLI::App* snapshot, CLI::App* clone, CLI::App* rename, CLI::App* inflate,
             CLI::App* decouple) {
  const LvolArgs* a = &args;
  const std::string& volume = a->volume;
  if (create_store->parsed()) return run_create_store(*a);
  if (list_stores->parsed()) return run_list_stores(*a);
  if (list->parsed()) return run_list(*a);
  if (create->parsed()) return run_create(*a);
  if (resize->parsed()) return run_resize(*a);
  if (snapshot->parsed()) return run_snapshot_or_clone(*a, true);
  if (clone->parsed()) return run_snapshot_or_clone(*a, false);
  if (del->parsed())
    return run_simple(*a, "lvol delete", [&](lvol::LvolStore& s) { return s.delete_volume(volume); },
                      [&] { return fmt::format("deleted volume {}", volume); });
  if (rename->parsed())
    return run_simple(*a, "lvol rename", [&](lvol::LvolStore& s) { return s.rename_volume(volume, a->new_name); },
                      [&] { return fmt::format("renamed volume {} to {}", volume, a->new_name); });
  if (inflate->parsed())
    return run_simple(*a, "lvol inflate", [&](lvol::LvolStore& s) { return s.inflate_volume(volume); },
                      [&] { return fmt::format("inflated volume {}: it no longer reads from a snapshot", volume); });
  if (decouple->parsed())
    return run_simple(*a, "lvol decouple", [&](lvol::LvolStore& s) { return s.decouple_volume(volume); },
                      [&] { return fmt::format("decoupled volume {} from its parent", volume); });
  return kExitUsage;
}

}  // namespace

Subcommand add_lvol(CLI::App& app) {
  auto a = std::make_shared<LvolArgs>();
  CLI::App* lvol = app.add_subcommand("lvol", "Logical volume stores: volumes, snapshots, clones");
  lvol->require_subcommand(1, 1);
  lvol->footer(
      "DEVICE is a device spec (uring:PATH, aio:PATH, ...) or a plain path, meaning uring:PATH. Sizes: 4096, 64M, 1G.\n"
      "A volume is the device lvol:DEVICE/VOLUME for every command that takes device specs, e.g.\n"
      "`sluice perf -T lvol:/tmp/img/db`. Exit status: 0 ok, 1 failure, 2 usage.");
  auto device = [&](CLI::App* c) { c->add_option("-d,--device", a->device, "Device spec or image path")->required(); };
  auto positional = [](CLI::App* c, const std::string& name, std::string& field, const std::string& help) {
    c->add_option(name, field, help)->required();
  };

  CLI::App* create_store = lvol->add_subcommand("create-store", "Format a device as an lvol store: DEVICE NAME");
  create_store->add_option("-d,--device", a->device, "Device spec or image path (or give it before NAME)");
  create_store->add_option("device", a->store_device, "Device spec or image path (unless --device is given)");
  create_store->add_option("name", a->store_name, "Store name: 1 to 63 of [A-Za-z0-9._-]");
  create_store->add_option("--cluster-size", a->cluster_size, "Allocation unit: a multiple of 4096")->capture_default_str();
  create_store->add_flag("--force", a->force,
                    "Format a device that is not blank (a store, a filesystem, data), destroying it");

  CLI::App* list_stores = lvol->add_subcommand("list-stores", "The lvol store on each device: DEVICE...");
  list_stores->add_option("-d,--device", a->devices, "Device spec or image path (repeatable)");
  list_stores->add_option("devices", a->more, "Device specs or image paths");
  list_stores->add_flag("--json", a->json, "Print JSON on stdout");

  CLI::App* list = lvol->add_subcommand("list", "The volumes of a store");
  device(list);
  list->add_flag("--json", a->json, "Print JSON on stdout");

  CLI::App* create = lvol->add_subcommand("create", "Create a volume: NAME SIZE");
  device(create);
  positional(create, "name", a->volume, "Volume name: 1 to 63 of [A-Za-z0-9._-]");
  positional(create, "size", a->size, "Size (4096, 64M, 1G), rounded up to whole clusters");
  create->add_flag("--thin", a->thin, "Allocate clusters on first write");

  CLI::App* resize = lvol->add_subcommand("resize", "Resize a volume: NAME SIZE");
  device(resize);
  positional(resize, "name", a->volume, "Volume name");
  positional(resize, "size", a->size, "New size, rounded up to whole clusters");

  CLI::App* del = lvol->add_subcommand("delete", "Delete a volume: NAME");
  device(del);
  positional(del, "name", a->volume, "Volume name");

  CLI::App* snapshot = lvol->add_subcommand("snapshot", "Snapshot a volume (it becomes a clone): VOLUME SNAPSHOT");
  device(snapshot);
  positional(snapshot, "volume", a->volume, "Volume to snapshot");
  positional(snapshot, "snapshot", a->new_name, "Name of the new snapshot");

  CLI::App* clone = lvol->add_subcommand("clone", "Clone a snapshot: SNAPSHOT CLONE");
  device(clone);
  positional(clone, "snapshot", a->volume, "Snapshot to clone");
  positional(clone, "clone", a->new_name, "Name of the new clone");

  CLI::App* rename = lvol->add_subcommand("rename", "Rename a volume: NAME NEW-NAME");
  device(rename);
  positional(rename, "name", a->volume, "Volume name");
  positional(rename, "new-name", a->new_name, "Its new name");

  CLI::App* inflate = lvol->add_subcommand("inflate", "Copy every cluster a clone reads from its snapshots: NAME");
  device(inflate);
  positional(inflate, "name", a->volume, "Volume name");

  CLI::App* decouple = lvol->add_subcommand("decouple", "Copy the clusters a clone reads from its parent: NAME");
  device(decouple);
  positional(decouple, "name", a->volume, "Volume name");

  auto run = [a, create_store, list_stores, list, create, resize, del, snapshot, clone, rename, inflate, decouple]() -> int {
    return run_lvol(*a, create_store, list_stores, list, create, resize, del, snapshot, clone, rename, inflate,
                    decouple);
  };
  return Subcommand{lvol, run};
}

}  // namespace sluice::cli
