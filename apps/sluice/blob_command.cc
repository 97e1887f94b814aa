// `sluice blob`: format, inspect, check and repair a blobstore (docs/format/blobstore.md).
// The inspecting commands (ls, show, dump, check) never write to the device.
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "base/log.h"
#include "base/size.h"
#include "blob/blob.h"
#include "blob/metadata_scan.h"
#include "blob/probe.h"
#include "blobtool/check.h"
#include "blobtool/device.h"
#include "blobtool/format_guard.h"
#include "blobtool/dump.h"
#include "blobtool/inventory.h"
#include "blobtool/repair.h"
#include "commands.h"
#include "fs/fs.h"
#include "lvol/lvol.h"

namespace sluice::cli {
namespace {

using blobtool::Device;

struct BlobArgs {
  std::string device;
  std::string cluster_size = "1M";
  std::string rebuild_cluster_size;  // repair: the store's, when its super block is rebuilt
  bool force = false;
  bool json = false;
  bool all = false;
  bool dry_run = false;
  uint64_t id = 0;
  std::string size;
  bool thin = false;
  std::string name;
  std::vector<std::string> xattrs;
  bool no_unload = false;
};

// Opens the device and loads its store read-only, or prints why not.
struct Loaded {
  std::unique_ptr<Device> dev;
  std::unique_ptr<blob::Blobstore> bs;
};

Result<Loaded> load_read_only(const std::string& arg) {
  Loaded l;
  auto dev = Device::create(arg);
  if (!dev.ok()) return dev.status();
  l.dev = std::move(dev.value());
  blob::LoadOptions lo;
  lo.read_only = true;
  auto bs = blob::Blobstore::load(l.dev->bdev_name(), lo);
  if (!bs.ok()) {
    Status st = bs.status();
    if (st.code() == Errc::corrupt) return Status(st.code(), st.message() + " (`sluice blob check` tells more)");
    return st;
  }
  l.bs = std::move(bs.value());
  return l;
}

int run_init(const BlobArgs& a) {
  constexpr std::string_view cmd = "blob init";
  auto cs = blobtool::parse_cluster_size(a.cluster_size);
  if (!cs.ok()) return fail(cmd, kExitUsage, cs.status().message());
  auto dev = Device::create(a.device);
  if (!dev.ok()) return fail(cmd, exit_code_for(dev.status()), dev.status().message());
  blob::InitOptions o;
  o.cluster_size = static_cast<uint32_t>(*cs);
  o.force = a.force;
  auto bs = blob::Blobstore::init((*dev)->bdev_name(), o);
  if (!bs.ok()) return fail(cmd, exit_code_for(bs.status()), blobtool::explain_refusal(bs.status()).message());
  const auto si = (*bs)->store_info();
  if (Status st = (*bs)->unload(); !st.ok()) {
    (*bs)->abandon();
    return fail(cmd, exit_code_for(st), st.message());
  }
  fmt::print("initialized blobstore {} on {}: {} clusters of {} ({} of data from offset {}); checkpoint slots of {} "
             "pages, journal of {} pages\n",
             si.uuid, (*dev)->spec(), si.total_clusters, format_size(si.cluster_size),
             format_size(si.total_clusters * si.cluster_size), si.data_offset, si.checkpoint_pages, si.journal_pages);
  return kExitOk;
}

int run_ls(const BlobArgs& a) {
  constexpr std::string_view cmd = "blob ls";
  auto l = load_read_only(a.device);
  if (!l.ok()) return fail(cmd, exit_code_for(l.status()), l.status().message());
  if (a.json) print_json(blobtool::list_json(*l->bs, l->dev->spec()));
  else fmt::print("{}", blobtool::list_text(*l->bs, l->dev->spec()));
  return kExitOk;
}

int run_show(const BlobArgs& a) {
  constexpr std::string_view cmd = "blob show";
  auto l = load_read_only(a.device);
  if (!l.ok()) return fail(cmd, exit_code_for(l.status()), l.status().message());
  if (a.json) {
    auto j = blobtool::show_json(*l->bs, a.id);
    if (!j.ok()) return fail(cmd, kExitFailure, j.status().message());
    print_json(*j);
  } else {
    auto t = blobtool::show_text(*l->bs, a.id);
    if (!t.ok()) return fail(cmd, kExitFailure, t.status().message());
    fmt::print("{}", *t);
  }
  return kExitOk;
}

int run_dump(const BlobArgs& a) {
  constexpr std::string_view cmd = "blob dump";
  auto dev = Device::create(a.device);
  if (!dev.ok()) return fail(cmd, exit_code_for(dev.status()), dev.status().message());
  blob::ScanOptions so;
  so.whole_ring = a.all;
  auto scan = blob::scan_metadata((*dev)->bdev_name(), so);
  if (!scan.ok()) return fail(cmd, exit_code_for(scan.status()), scan.status().message());
  // A device that never held a store, or holds a newer one, has nothing this tool can decode.
  if (Status st = scan->unusable(); st.code() == Errc::not_found || st.code() == Errc::not_supported)
    return fail(cmd, kExitFailure, st.message());
  std::optional<blobtool::LoadSummary> load;
  if (scan->in_use >= 0) load = blobtool::load_summary((*dev)->bdev_name());
  const blobtool::LoadSummary* l = load ? &*load : nullptr;
  if (a.json) print_json(blobtool::dump_json(*scan, l));
  else fmt::print("{}", blobtool::dump_text(*scan, l));
  return kExitOk;
}

int run_check(const BlobArgs& a) {
  constexpr std::string_view cmd = "blob check";
  auto dev = Device::create(a.device);
  if (!dev.ok()) return fail(cmd, exit_code_for(dev.status()), dev.status().message());
  auto r = blobtool::run_check(**dev);
  if (!r.ok()) return fail(cmd, kExitFailure, r.status().message());
  if (a.json) print_json(blobtool::check_json(*r));
  else fmt::print("{}", blobtool::check_text(*r));
  std::fflush(stdout);
  if (r->problems() == 0) return kExitOk;
  return fail(cmd, kExitFailure,
              fmt::format("{} is damaged: {} problem(s){}", r->spec, r->problems(),
                          a.json ? "" : " (listed above as DAMAGE)"));
}

int run_repair(const BlobArgs& a) {
  constexpr std::string_view cmd = "blob repair";
  auto dev = Device::create(a.device);
  if (!dev.ok()) return fail(cmd, exit_code_for(dev.status()), dev.status().message());
  blobtool::RepairOptions o;
  o.dry_run = a.dry_run;
  o.force = a.force;
  if (!a.rebuild_cluster_size.empty()) {
    auto cs = blobtool::parse_cluster_size(a.rebuild_cluster_size);
    if (!cs.ok()) return fail(cmd, kExitUsage, cs.status().message());
    o.cluster_size = static_cast<uint32_t>(*cs);
  }
  auto r = blobtool::run_repair(**dev, o, [](const std::string& line) {
    fmt::print("{}\n", line);
    std::fflush(stdout);
  });
  if (!r.ok()) return fail(cmd, kExitFailure, r.status().message());
  if (r->refused || (r->changed && !r->clean_after)) return fail(cmd, kExitFailure, r->message);
  fmt::print("{}\n", r->message);
  return kExitOk;
}

// Loads the store read-write, runs `op`, makes the change durable and unloads cleanly (or,
// with --no-unload, leaves the store as a crashed process would, for recovery tests).
int modify(std::string_view cmd, const BlobArgs& a, const std::function<Status(blob::Blobstore&)>& op) {
  auto dev = Device::create(a.device);
  if (!dev.ok()) return fail(cmd, exit_code_for(dev.status()), dev.status().message());
  auto bs = blob::Blobstore::load((*dev)->bdev_name());
  if (!bs.ok()) return fail(cmd, exit_code_for(bs.status()), bs.status().message());
  Status st = op(**bs);
  if (st.ok()) st = (*bs)->sync_md();
  if (!st.ok()) {
    if (!(*bs)->unload().ok()) (*bs)->abandon();
    return fail(cmd, exit_code_for(st), st.message());
  }
  if (a.no_unload) {
    (*bs)->abandon();
    return kExitOk;
  }
  if (Status u = (*bs)->unload(); !u.ok()) {
    (*bs)->abandon();  // the destructor would try (and report) the same again
    return fail(cmd, exit_code_for(u), u.message());
  }
  return kExitOk;
}

Result<std::map<std::string, std::string>> attributes(const BlobArgs& a) {
  std::map<std::string, std::string> x;
  if (!a.name.empty()) x["name"] = a.name;
  for (const auto& kv : a.xattrs) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Status(Errc::invalid_argument, fmt::format("--xattr {}: want NAME=VALUE", kv));
    x[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return x;
}

Result<uint64_t> clusters_of(blob::Blobstore& bs, const std::string& size) {
  auto bytes = parse_size(size);
  if (!bytes.ok()) return Status(Errc::invalid_argument, fmt::format("size: {}", bytes.status().message()));
  const uint32_t cs = bs.store_info().cluster_size;
  return (*bytes + cs - 1) / cs;
}

int run_create(const BlobArgs& a) {
  constexpr std::string_view cmd = "blob create";
  auto x = attributes(a);
  if (!x.ok()) return fail(cmd, kExitUsage, x.status().message());
  blob::BlobId id = 0;
  int rc = modify(cmd, a, [&](blob::Blobstore& bs) -> Status {
    auto n = clusters_of(bs, a.size);
    if (!n.ok()) return n.status();
    blob::CreateOptions o;
    o.size_clusters = *n;
    o.thin = a.thin;
    o.xattrs = *x;
    auto r = bs.create(o);
    if (!r.ok()) return r.status();
    id = *r;
    return Status::Ok();
  });
  if (rc == kExitOk) fmt::print("{}\n", id);
  return rc;
}

int run_resize(const BlobArgs& a) {
  return modify("blob resize", a, [&](blob::Blobstore& bs) -> Status {
    auto n = clusters_of(bs, a.size);
    if (!n.ok()) return n.status();
    return bs.resize(a.id, *n);
  });
}

// A store SluiceFS or an lvol store owns keeps its own records of its blobs; removing one
// behind its back breaks it, so that takes --force, and then leaves a note on the super blob
// for the owner's fsck (blob::kXattrForcedRemovals).
int run_rm(const BlobArgs& a) {
  constexpr std::string_view cmd = "blob rm";
  fs::register_probe_owner();
  lvol::register_probe_owner();
  std::optional<std::string> owner;
  {
    // Judged on a read-only load: a refusal writes nothing (a read-write load's unload would
    // write a checkpoint).
    auto l = load_read_only(a.device);
    if (!l.ok()) return fail(cmd, exit_code_for(l.status()), l.status().message());
    owner = blob::owner_description(*l->bs);
    (void)l->bs->unload();
  }
  if (owner && !a.force)
    return fail(cmd, kExitFailure,
                fmt::format("blob {} belongs to {}, which keeps its own records of its blobs: removing it here would "
                            "break that; use its own tools (sluice fs rm, sluice lvol delete), or --force",
                            a.id, *owner));
  return modify(cmd, a, [&](blob::Blobstore& bs) -> Status {
    SLUICE_RETURN_IF_ERROR(bs.remove(a.id));
    auto super = bs.super_blob();
    if (!owner || !super.ok() || *super == a.id) return Status::Ok();
    auto note = bs.get_xattr(*super, blob::kXattrForcedRemovals, true);
    const std::string ids = note.ok() && !note->empty() ? fmt::format("{},{}", *note, a.id) : std::to_string(a.id);
    log::warn("blob rm --force: blob {} removed from {}; its fsck will report it", a.id, *owner);
    return bs.set_xattr(*super, blob::kXattrForcedRemovals, ids, true);
  });
}

int run_snapshot_or_clone(const BlobArgs& a, bool snapshot) {
  const std::string_view cmd = snapshot ? "blob snapshot" : "blob clone";
  auto x = attributes(a);
  if (!x.ok()) return fail(cmd, kExitUsage, x.status().message());
  blob::BlobId id = 0;
  int rc = modify(cmd, a, [&](blob::Blobstore& bs) -> Status {
    auto r = snapshot ? bs.snapshot(a.id, *x) : bs.clone(a.id, *x);
    if (!r.ok()) return r.status();
    id = *r;
    return Status::Ok();
  });
  if (rc == kExitOk) fmt::print("{}\n", id);
  return rc;
}

}  // namespace

Subcommand add_blob(CLI::App& app) {
  auto a = std::make_shared<BlobArgs>();
  CLI::App* blob = app.add_subcommand("blob", "Format, inspect, check and repair a blobstore");
  blob->require_subcommand(1, 1);
  blob->footer(
      "DEVICE is a device spec (uring:PATH, aio:PATH, malloc:SIZE, ...) or a plain path, meaning uring:PATH.\n"
      "ls, show, dump and check only read the device. Exit status: 0 ok (check: clean), 1 failure or damage\n"
      "found, 2 usage.");
  auto device = [&](CLI::App* c) {
    c->add_option("-d,--device", a->device, "Device spec or image path")->required();
  };
  auto json = [&](CLI::App* c) { c->add_flag("--json", a->json, "Print JSON on stdout"); };

  CLI::App* init = blob->add_subcommand("init", "Format the device as an empty blobstore");
  device(init);
  init->add_option("--cluster-size", a->cluster_size, "Allocation unit: a multiple of 4096 (4k .. 1G)")->capture_default_str();
  init->add_flag("--force", a->force,
                    "Format a device that is not blank (a store, a filesystem, data), destroying it");

  CLI::App* ls = blob->add_subcommand("ls", "List the blobs: size, allocation, flags, parent, name");
  device(ls);
  json(ls);

  CLI::App* show = blob->add_subcommand("show", "One blob: extents, attributes, clones");
  device(show);
  show->add_option("id", a->id, "Blob id")->required();
  json(show);

  CLI::App* dump = blob->add_subcommand(
      "dump", "The raw metadata: super block copies, the active checkpoint's pages and records, the journal");
  device(dump);
  json(dump);
  dump->add_flag("-a,--all", a->all, "Also list every page of the journal ring");

  CLI::App* check = blob->add_subcommand("check", "Check the store (read-only); exit 1 when damaged");
  device(check);
  json(check);

  CLI::App* repair = blob->add_subcommand(
      "repair",
      "Repair what is safe: damaged super block copies (both lost: rebuilt from the newest checkpoint), journal "
      "recovery, unzeroed clusters");
  device(repair);
  repair->add_flag("-n,--dry-run", a->dry_run, "Only say what would be done");
  repair->add_flag("--force", a->force,
                   "Recover even when that drops intact journal batches stranded behind damage");
  repair->add_option("--cluster-size", a->rebuild_cluster_size,
                     "Rebuilding a lost super block: the store's cluster size, when several fit");

  auto unclean = [&](CLI::App* c) {
    c->add_flag("--no-unload", a->no_unload, "Leave the store unclean, as if the process died (recovery tests)")
        ->group("");  // hidden
  };
  auto naming = [&](CLI::App* c) {
    c->add_option("--name", a->name, "Sets the user attribute \"name\"");
    c->add_option("--xattr", a->xattrs, "A user attribute NAME=VALUE (repeatable)");
  };
  CLI::App* create = blob->add_subcommand("create", "Create a blob; prints its id");
  device(create);
  create->add_option("--size", a->size, "Size in bytes (4096, 64M, ...), rounded up to whole clusters")->required();
  create->add_flag("--thin", a->thin, "Allocate clusters on first write");
  naming(create);
  unclean(create);

  CLI::App* resize = blob->add_subcommand("resize", "Resize a blob");
  device(resize);
  resize->add_option("id", a->id, "Blob id")->required();
  resize->add_option("size", a->size, "New size in bytes, rounded up to whole clusters")->required();
  unclean(resize);

  CLI::App* rm = blob->add_subcommand("rm", "Delete a blob");
  device(rm);
  rm->add_option("id", a->id, "Blob id")->required();
  rm->add_flag("--force", a->force, "Remove a blob of a store SluiceFS or an lvol store owns (breaks what it held)");
  unclean(rm);

  CLI::App* snapshot = blob->add_subcommand("snapshot", "Snapshot a blob (it becomes a clone of it); prints its id");
  device(snapshot);
  snapshot->add_option("id", a->id, "Blob id")->required();
  naming(snapshot);
  unclean(snapshot);

  CLI::App* clone = blob->add_subcommand("clone", "Clone a snapshot; prints the clone's id");
  device(clone);
  clone->add_option("id", a->id, "Snapshot id")->required();
  naming(clone);
  unclean(clone);

  return Subcommand{blob, [a, init, ls, show, dump, check, repair, create, resize, rm, snapshot, clone] {
                      if (init->parsed()) return run_init(*a);
                      if (ls->parsed()) return run_ls(*a);
                      if (show->parsed()) return run_show(*a);
                      if (dump->parsed()) return run_dump(*a);
                      if (check->parsed()) return run_check(*a);
                      if (repair->parsed()) return run_repair(*a);
                      if (create->parsed()) return run_create(*a);
                      if (resize->parsed()) return run_resize(*a);
                      if (rm->parsed()) return run_rm(*a);
                      if (snapshot->parsed()) return run_snapshot_or_clone(*a, true);
                      if (clone->parsed()) return run_snapshot_or_clone(*a, false);
                      return kExitUsage;
                    }};
}

}  // namespace sluice::cli
