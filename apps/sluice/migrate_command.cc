// `sluice migrate import|export|status|finish`: moving a RocksDB database onto SluiceFS and
// back (docs/migration.md). The copy engine lives in migrate/ (finish reuses it).
//
//   sluice migrate import SRC_DIR URI --db /PATH     kernel directory -> SluiceFS
//   sluice migrate export URI --db /PATH DEST_DIR    SluiceFS -> kernel directory
//   sluice migrate status URI                        (URI with fallback=/DIR)
//   sluice migrate finish URI                        copies what fallback= still reads
// URI is the one RocksDB gets (--fs_uri), and /PATH what RocksDB opens (--db), so the
// destination is unambiguous although device specs contain '/' and ':'.
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/size.h"
#include "blobtool/device.h"
#include "commands.h"
#include "fs/fs.h"
#include "migrate/copier.h"
#include "migrate/endpoints.h"
#include "migrate/verify.h"

namespace sluice::cli {
namespace {

using namespace sluice::migrate;

struct MigrateArgs {
  std::string uri;  // sluice://DEVICE[?options]
  std::string dir;  // the database directory on a kernel filesystem: import reads it, export makes it
  std::string db;
  bool force = false;
  bool progress = false;
  bool json = false;
};

int print_status(const MigrateArgs& a, rocksdb_plugin::Fallback& fb);

int failed(std::string_view cmd, const Status& st) {
  return fail(cmd, st.code() == Errc::invalid_argument ? kExitUsage : kExitFailure, st.message());
}

// The whole copy of import and export: destination checks, resume, space, copy, verify.
int copy_db(std::string_view cmd, const std::string& verb, const Side& src, const Side& dst, const MigrateArgs& a) {
  auto manifest = prepare_destination(dst, src.label, a.force);
  if (!manifest.ok()) return failed(cmd, manifest.status());
  std::vector<std::string> subdirs;
  auto files = list_files(src, &subdirs);
  if (!files.ok()) return failed(cmd, files.status());
  for (const auto& d : subdirs)
    fmt::print(stderr, "sluice {}: warning: {} is a directory: not copied\n", cmd, src.path(d));
  uint64_t need = 0;
  for (const auto& f : *files)
    if (const Manifest::Entry* e = manifest->find(f.name); e == nullptr || e->size != f.size) need += f.size;
  if (Status st = check_space(dst, need); !st.ok()) return failed(cmd, st);
  if (manifest->found())
    fmt::print(stderr, "sluice {}: resuming: {} file(s) already verified\n", cmd, manifest->size());
  if (Status st = manifest->start(dst, src.label); !st.ok()) return failed(cmd, st);
  CopyOptions opts{verb, a.progress || isatty(STDERR_FILENO), &*manifest};
  fail_hook_from_env(opts);
  auto stats = copy_files(src, dst, *files, opts);
  if (!stats.ok()) return failed(cmd, stats.status());
  if (Status st = manifest->remove(dst); !st.ok()) return failed(cmd, st);
  fmt::print(stderr, "sluice {}: {}\n", cmd, summary(fmt::format("{} -> {}", src.label, dst.label), *stats));
  return kExitOk;
}

int run_import(const MigrateArgs& a) {
  constexpr std::string_view cmd = "migrate import";
  Side src = kernel_side(a.dir);
  if (Status st = check_kernel_source(src.dir); !st.ok()) return failed(cmd, st);
  auto dst = open_sluice(a.uri, a.db, false);
  if (!dst.ok()) return failed(cmd, dst.status());
  return copy_db(cmd, "import", src, dst->side, a);
}

int run_export(const MigrateArgs& a) {
  constexpr std::string_view cmd = "migrate export";
  auto src = open_sluice(a.uri, a.db, false);
  if (!src.ok()) return failed(cmd, src.status());
  if (!src->side.fs->FileExists(src->side.path("CURRENT"), {}, nullptr).ok())
    return fail(cmd, kExitFailure, fmt::format("source {} holds no RocksDB database (no CURRENT file)", src->side.label));
  if (Status st = check_fallback_finished(*src); !st.ok()) return fail(cmd, kExitFailure, st.message());
  Side dst = kernel_side(a.dir);
  return copy_db(cmd, "export", src->side, dst, a);
}

// The fallback of a URI: status and finish need one.
Result<SluiceEnd> open_fallback(const std::string& uri) {
  auto end = open_sluice(uri, "", true);
  if (!end.ok()) return end.status();
  if (end->fs->fallback() == nullptr)
    return Status(Errc::invalid_argument, fmt::format("{}: no fallback=/DIR in the URI", uri));
  end->side.dir = end->fs->fallback()->kernel_dir();  // RocksDB's path: the same as the kernel's
  end->side.label = fmt::format("{} {}", uri, end->side.dir);
  return end;
}

// Status may run while the database does (in another process that has the image mounted):
// it mounts read-only, without the plugin, so it never writes the image.
int run_status(const MigrateArgs& a) {
  constexpr std::string_view cmd = "migrate status";
  auto uri = rocksdb_plugin::parse_uri(a.uri);
  if (!uri.ok()) return failed(cmd, uri.status());
  if (uri->fallback.empty()) return fail(cmd, kExitUsage, fmt::format("{}: no fallback=/DIR in the URI", a.uri));
  const std::string sluice_dir = rocksdb_plugin::path_under_root(uri->root, uri->fallback);
  if (sluice_dir.empty())
    return fail(cmd, kExitUsage, fmt::format("fallback={}: that directory is not under root={}", uri->fallback, uri->root));
  auto dev = blobtool::Device::create(uri->device);
  if (!dev.ok()) return fail(cmd, kExitFailure, fmt::format("cannot open device '{}': {}", uri->device, dev.status().message()));
  fs::MountOptions mo;
  mo.read_only = true;
  auto mounted = fs::FileSystem::mount((*dev)->bdev_name(), mo);
  if (!mounted.ok()) {
    const bool no_fs = mounted.status().code() == Errc::wrong_format;
    return fail(cmd, kExitFailure,
                no_fs ? fmt::format("{} holds no SluiceFS yet: nothing has moved (the first open with format=1 in the "
                                    "URI, or `sluice mkfs`, makes one)",
                                    uri->device)
                      : mounted.status().message());
  }
  int rc;
  {
    rocksdb_plugin::Fallback fb(mounted->get(), nullptr, uri->fallback, sluice_dir);
    rc = print_status(a, fb);
  }
  (void)(*mounted)->unmount();  // read-only: writes nothing
  return rc;
}

int print_status(const MigrateArgs& a, rocksdb_plugin::Fallback& fb) {
  constexpr std::string_view cmd = "migrate status";
  auto finished = fb.finished();
  auto remaining = fb.remaining();
  if (!finished.ok()) return failed(cmd, finished.status());
  if (!remaining.ok()) return failed(cmd, remaining.status());
  uint64_t bytes = 0, ssts = 0;
  for (const auto& r : *remaining) {
    bytes += r.size;
    ssts += is_sst(r.name) ? 1 : 0;
  }
  if (a.json) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& r : *remaining) files.push_back({{"name", r.name}, {"size", r.size}});
    nlohmann::json j = {{"kernel_dir", fb.kernel_dir()}, {"finished", *finished}, {"remaining_files", remaining->size()},
                        {"remaining_bytes", bytes},      {"remaining_sst", ssts}, {"files", files}};
    fmt::print("{}\n", j.dump(2));
    return kExitOk;
  }
  if (*finished) {
    fmt::print("{}: fallback finished: every file is in SluiceFS; fallback= is now a no-op\n", fb.kernel_dir());
    return kExitOk;
  }
  for (const auto& r : *remaining) fmt::print("{:>12} {}\n", r.size, r.name);
  fmt::print("{}: {} file(s), {} still read from the kernel directory ({} SST); `sluice migrate finish` copies them\n",
             fb.kernel_dir(), remaining->size(), format_size(bytes), ssts);
  return kExitOk;
}

int run_finish(const MigrateArgs& a) {
  constexpr std::string_view cmd = "migrate finish";
  auto end = open_fallback(a.uri);
  if (!end.ok()) return failed(cmd, end.status());
  rocksdb_plugin::Fallback& fb = *end->fs->fallback();
  auto remaining = fb.remaining();
  if (!remaining.ok()) return failed(cmd, remaining.status());
  std::vector<FileEntry> files;
  uint64_t need = 0;
  for (const auto& r : *remaining) {
    files.push_back({r.name, r.size});
    need += r.size;
  }
  std::sort(files.begin(), files.end(), [](const FileEntry& x, const FileEntry& y) {
    const bool xc = x.name == "CURRENT", yc = y.name == "CURRENT";
    return xc != yc ? yc : x.name < y.name;
  });
  Side& dst = end->side;
  if (::rocksdb::IOStatus s = dst.fs->CreateDirIfMissing(dst.dir, {}, nullptr); !s.ok())
    return failed(cmd, from_rocksdb(s, dst.label));
  if (Status st = check_space(dst, need); !st.ok()) return failed(cmd, st);
  // No manifest: a copied file shadows its kernel original, so a rerun skips it by itself.
  CopyOptions opts{"finish", a.progress || isatty(STDERR_FILENO), nullptr};
  fail_hook_from_env(opts);
  Side src = kernel_side(fb.kernel_dir());
  auto stats = copy_files(src, dst, files, opts);
  if (!stats.ok()) return failed(cmd, stats.status());
  if (Status st = fb.finish(); !st.ok()) return failed(cmd, st);
  fmt::print(stderr, "sluice {}: {}\n", cmd, summary(fmt::format("{} -> {}", src.label, dst.label), *stats));
  fmt::print(stderr, "sluice {}: fallback is over: {} is no longer read (drop fallback= from the URI when convenient)\n",
             cmd, fb.kernel_dir());
  return kExitOk;
}

}  // namespace

Subcommand add_migrate(CLI::App& app) {
  auto a = std::make_shared<MigrateArgs>();
  CLI::App* m = app.add_subcommand("migrate", "Move a RocksDB database onto SluiceFS and back: import, export, status, finish");
  m->require_subcommand(1, 1);
  m->footer(
      "URI is the plugin's (sluice://DEVICE[?options], as RocksDB's --fs_uri) and --db the path RocksDB opens.\n"
      "Every copied file is verified (crc32c; SST files also by RocksDB's block checksums); an interrupted import or\n"
      "export resumes where it stopped. Exit status: 0 ok, 1 failure, 2 usage. See docs/migration.md.");
  auto progress = [&](CLI::App* c) {
    c->add_flag("--progress", a->progress, "Draw the progress line on stderr even when it is not a terminal");
  };

  CLI::App* imp = m->add_subcommand("import", "Copy a closed database from a kernel directory: SRC_DIR URI --db /PATH");
  imp->add_option("src", a->dir, "The database directory on a kernel filesystem (read only)")->required();
  imp->add_option("uri", a->uri, "sluice://DEVICE[?format=1&...]")->required();
  imp->add_option("--db", a->db, "The database's path in SluiceFS, as RocksDB's --db")->required();
  imp->add_flag("--force", a->force, "Replace whatever the destination directory holds");
  progress(imp);

  CLI::App* exp = m->add_subcommand("export", "Copy a closed database back to a kernel directory: URI --db /PATH DEST_DIR");
  exp->add_option("uri", a->uri, "sluice://DEVICE")->required();
  exp->add_option("dest", a->dir, "The directory to create on a kernel filesystem")->required();
  exp->add_option("--db", a->db, "The database's path in SluiceFS, as RocksDB's --db")->required();
  exp->add_flag("--force", a->force, "Replace whatever the destination directory holds");
  progress(exp);

  CLI::App* st = m->add_subcommand("status", "Files fallback= still reads from the kernel directory: URI");
  st->add_option("uri", a->uri, "sluice://DEVICE?fallback=/DIR")->required();
  st->add_flag("--json", a->json, "Print JSON on stdout");

  CLI::App* fin = m->add_subcommand("finish", "Copy the rest of a fallback= database into SluiceFS (closed): URI");
  fin->add_option("uri", a->uri, "sluice://DEVICE?fallback=/DIR")->required();
  progress(fin);

  auto run = [a, imp, exp, st, fin]() -> int {
    if (imp->parsed()) return run_import(*a);
    if (exp->parsed()) return run_export(*a);
    if (st->parsed()) return run_status(*a);
    if (fin->parsed()) return run_finish(*a);
    return kExitUsage;
  };
  return Subcommand{m, run};
}

}  // namespace sluice::cli
