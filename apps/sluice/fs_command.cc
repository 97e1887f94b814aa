// `sluice mkfs`, `sluice fsck` and `sluice fs ls|stat|cat|cp|mkdir|rm|df`: SluiceFS from the
// shell (src/fs/fs.h, docs/format/sluicefs.md). DEVICE is a device spec or a plain path, as
// for `sluice blob`. Commands that only look mount read-only (no recovery writes), so they
// are safe on an image another process left behind; the others unmount cleanly, so what they
// did is durable when they return.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/size.h"
#include "blobtool/check.h"
#include "blobtool/device.h"
#include "blobtool/format_guard.h"
#include "commands.h"
#include "fs/fs.h"

namespace sluice::cli {
namespace {

using blobtool::Device;

struct FsArgs {
  std::string device;
  std::string path;      // ls, stat, cat, mkdir, rm
  std::string src, dst;  // cp: a host file, or fs:/PATH
  std::string cluster_size = "1M";
  bool force = false;
  bool json = false;
  bool long_list = false;
  bool recursive = false;
};

constexpr std::string_view kFsPrefix = "fs:";

std::string join(const std::string& dir, const std::string& name) { return dir == "/" ? "/" + name : dir + "/" + name; }

// Mounts DEVICE, runs `op`, unmounts (read-write mounts: durably) and reports.
int with_fs(std::string_view cmd, const std::string& arg, bool read_only,
            const std::function<int(fs::FileSystem&)>& op) {
  auto dev = Device::create(arg);
  if (!dev.ok()) return fail(cmd, exit_code_for(dev.status()), dev.status().message());
  fs::MountOptions mo;
  mo.read_only = read_only;
  auto mounted = fs::FileSystem::mount((*dev)->bdev_name(), mo);
  if (!mounted.ok()) return fail(cmd, kExitFailure, mounted.status().message());
  int rc = op(**mounted);
  if (Status st = (*mounted)->unmount(); !st.ok()) {
    (*mounted)->abandon();
    return fail(cmd, kExitFailure, fmt::format("unmount: {}", st.message()));
  }
  return rc;
}

int run_mkfs(const FsArgs& a) {
  constexpr std::string_view cmd = "mkfs";
  auto cs = blobtool::parse_cluster_size(a.cluster_size);
  if (!cs.ok()) return fail(cmd, kExitUsage, cs.status().message());
  auto dev = Device::create(a.device);
  if (!dev.ok()) return fail(cmd, exit_code_for(dev.status()), dev.status().message());
  fs::FormatOptions fo;
  fo.cluster_size = static_cast<uint32_t>(*cs);
  fo.force = a.force;
  if (Status st = fs::FileSystem::format((*dev)->bdev_name(), fo); !st.ok())
    return fail(cmd, exit_code_for(st), blobtool::explain_refusal(st).message());
  const auto g = (*dev)->geometry();
  fmt::print("formatted {} as SluiceFS: {} in clusters of {}\n", (*dev)->spec(),
             format_size(g.size_bytes()), format_size(*cs));
  return kExitOk;
}

// fsck fails as a report: with --json, a JSON object naming the error, so a script reading
// stdout gets an answer for an image it cannot open too.
int fsck_failure(const FsArgs& a, std::string_view message) {
  if (a.json) {
    print_json({{"device", a.device}, {"ok", false}, {"error", message}, {"problems", {message}}});
    std::fflush(stdout);
  }
  return fail("fsck", kExitFailure, message);
}

// The blobstore under the namespace first (the check `sluice blob check` runs): a damaged
// super block copy or journal loads fine, so the namespace check alone would call it clean.
std::vector<std::string> blobstore_damage(const blobtool::CheckReport& r) {
  std::vector<std::string> out;
  for (const auto& f : r.findings)
    if (f.severity == blobtool::Severity::damage) out.push_back("blobstore: " + f.message);
  return out;
}

int run_fsck(const FsArgs& a) {
  auto dev = Device::create(a.device);
  if (!dev.ok()) return fsck_failure(a, dev.status().message());
  auto blob_report = blobtool::run_check(**dev);
  if (!blob_report.ok()) return fsck_failure(a, blob_report.status().message());
  std::vector<std::string> problems = blobstore_damage(*blob_report);
  fs::MountOptions mo;
  mo.read_only = true;
  auto mounted = fs::FileSystem::mount((*dev)->bdev_name(), mo);
  if (!mounted.ok()) {
    if (problems.empty()) return fsck_failure(a, mounted.status().message());
    problems.push_back(fmt::format("the file system cannot be mounted: {}", mounted.status().message()));
  }
  fs::CheckReport report;
  if (mounted.ok()) {
    auto checked = (*mounted)->check();
    if (Status st = (*mounted)->unmount(); !st.ok()) (*mounted)->abandon();
    if (!checked.ok()) return fsck_failure(a, checked.status().message());
    report = std::move(checked.value());
  }
  problems.insert(problems.end(), report.problems.begin(), report.problems.end());
  const std::string device = (*dev)->spec();
  const std::string fix =
      blob_report->problems() == 0
          ? ""
          : fmt::format("`sluice blob repair -d {}` repairs the blobstore damage it can (`sluice blob check -d {}` tells more)",
                        device, device);
  if (a.json) {
    print_json({{"device", device},
                {"ok", problems.empty()},
                {"mounted", mounted.ok()},
                {"files", report.files},
                {"directories", report.directories},
                {"orphans", report.orphans},
                {"problems", problems},
                {"fix", fix}});
  } else {
    for (const auto& p : problems) fmt::print("problem: {}\n", p);
    if (!fix.empty()) fmt::print("fix: {}\n", fix);
    fmt::print("{}: {} file(s), {} director(ies), {} orphan(s) awaiting collection: {}\n", device, report.files,
               report.directories, report.orphans,
               problems.empty() ? "clean" : fmt::format("{} problem(s)", problems.size()));
  }
  std::fflush(stdout);
  if (problems.empty()) return kExitOk;
  return fail("fsck", kExitFailure, fmt::format("{} is damaged: {} problem(s){}", device, problems.size(),
                                                a.json ? "" : " (listed above)"));
}

nlohmann::json stat_json(const std::string& path, const fs::FileStat& s) {
  return {{"path", path},        {"type", s.directory ? "directory" : "file"}, {"size", s.size},
          {"allocated", s.allocated}, {"mtime_ns", s.mtime_ns},            {"id", s.id}};
}

std::string stat_line(const std::string& name, const fs::FileStat& s) {
  char when[32] = "?";
  const time_t secs = static_cast<time_t>(s.mtime_ns / 1000000000);
  tm t{};
  if (localtime_r(&secs, &t) != nullptr) std::strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &t);
  return fmt::format("{} {:>12} {:>10} {} {}", s.directory ? 'd' : '-', s.size, format_size(s.allocated), when,
                     name + (s.directory ? "/" : ""));
}

// Lists `dir` (and below, with -R) into `out`; an error names the path.
Status list_tree(fs::FileSystem& f, const std::string& dir, bool recursive, nlohmann::json& out, bool long_list,
                 bool json) {
  auto names = f.list(dir);
  if (!names.ok()) return names.status();
  if (recursive && !json) fmt::print("{}:\n", dir);
  std::vector<std::string> subdirs;
  for (const auto& n : *names) {
    const std::string path = join(dir, n);
    auto st = f.stat(path);
    if (!st.ok()) return st.status();
    if (json) {
      out.push_back(stat_json(path, *st));
    } else {
      fmt::print("{}\n", long_list ? stat_line(n, *st) : n + (st->directory ? "/" : ""));
    }
    if (st->directory) subdirs.push_back(path);
  }
  if (!recursive) return Status::Ok();
  for (const auto& d : subdirs) {
    if (!json) fmt::print("\n");
    if (Status s = list_tree(f, d, true, out, long_list, json); !s.ok()) return s;
  }
  return Status::Ok();
}

int run_ls(const FsArgs& a) {
  constexpr std::string_view cmd = "fs ls";
  const std::string dir = a.path.empty() ? "/" : a.path;
  return with_fs(cmd, a.device, true, [&](fs::FileSystem& f) {
    auto st = f.stat(dir);
    if (!st.ok()) return fail(cmd, exit_code_for(st.status()), st.status().message());
    nlohmann::json out = nlohmann::json::array();
    if (!st->directory) {  // like ls: a file lists itself
      if (a.json) {
        out.push_back(stat_json(dir, *st));
        print_json(out);
      } else {
        fmt::print("{}\n", a.long_list ? stat_line(dir, *st) : dir);
      }
      return kExitOk;
    }
    if (Status s = list_tree(f, dir, a.recursive, out, a.long_list, a.json); !s.ok())
      return fail(cmd, exit_code_for(s), s.message());
    if (a.json) print_json(out);
    return kExitOk;
  });
}

int run_stat(const FsArgs& a) {
  constexpr std::string_view cmd = "fs stat";
  return with_fs(cmd, a.device, true, [&](fs::FileSystem& f) {
    auto st = f.stat(a.path);
    if (!st.ok()) return fail(cmd, exit_code_for(st.status()), st.status().message());
    if (a.json) {
      print_json(stat_json(a.path, *st));
    } else {
      fmt::print("{}: {}, {} bytes, {} allocated, id {}\n{}\n", a.path, st->directory ? "directory" : "file", st->size,
                 format_size(st->allocated), st->id, stat_line(a.path, *st));
    }
    return kExitOk;
  });
}

// Streams a SluiceFS file to `sink`, in 1 MiB reads.
Status read_file(fs::FileSystem& f, const std::string& path, const std::function<Status(const char*, size_t)>& sink) {
  auto file = f.open(path, {});
  if (!file.ok()) return file.status();
  std::vector<char> buf(1u << 20);
  for (uint64_t off = 0;;) {
    auto n = (*file)->pread(buf.data(), buf.size(), off);
    if (!n.ok()) return Status(n.status().code(), fmt::format("{}: {}", path, n.status().message()));
    if (*n == 0) break;
    if (Status s = sink(buf.data(), *n); !s.ok()) return s;
    off += *n;
  }
  return (*file)->close();
}

int run_cat(const FsArgs& a) {
  constexpr std::string_view cmd = "fs cat";
  return with_fs(cmd, a.device, true, [&](fs::FileSystem& f) {
    Status s = read_file(f, a.path, [](const char* p, size_t n) {
      if (std::fwrite(p, 1, n, stdout) != n) return Status(Errc::io_error, fmt::format("stdout: {}", std::strerror(errno)));
      return Status::Ok();
    });
    std::fflush(stdout);
    return s.ok() ? kExitOk : fail(cmd, exit_code_for(s), s.message());
  });
}

// cp: exactly the SluiceFS side carries the "fs:" prefix. One file: a directory on either side
// is refused before anything is created, and a copy that fails removes the file it created.
int run_cp(const FsArgs& a) {
  constexpr std::string_view cmd = "fs cp";
  const bool from_fs = a.src.starts_with(kFsPrefix), to_fs = a.dst.starts_with(kFsPrefix);
  if (from_fs == to_fs)
    return fail(cmd, kExitUsage,
                "name the SluiceFS side with fs:, e.g. `sluice fs cp IMG local.txt fs:/dir/file` or "
                "`sluice fs cp IMG fs:/dir/file local.txt`");
  const std::string src = from_fs ? a.src.substr(kFsPrefix.size()) : a.src;
  const std::string dst = to_fs ? a.dst.substr(kFsPrefix.size()) : a.dst;
  return with_fs(cmd, a.device, from_fs, [&](fs::FileSystem& f) {
    uint64_t bytes = 0;
    Status s;
    auto directory = [&](const std::string& what) {
      return fail(cmd, kExitFailure, fmt::format("{} is a directory; fs cp copies one file", what));
    };
    std::error_code ec;
    if (from_fs) {
      auto st = f.stat(src);
      if (!st.ok()) return fail(cmd, exit_code_for(st.status()), st.status().message());
      if (st->directory) return directory("fs:" + src);
      const bool created = !std::filesystem::exists(dst, ec);
      std::FILE* out = std::fopen(dst.c_str(), "wb");
      if (out == nullptr) return fail(cmd, kExitFailure, fmt::format("{}: {}", dst, std::strerror(errno)));
      s = read_file(f, src, [&](const char* p, size_t n) {
        if (std::fwrite(p, 1, n, out) != n) return Status(Errc::io_error, fmt::format("{}: {}", dst, std::strerror(errno)));
        bytes += n;
        return Status::Ok();
      });
      if (std::fclose(out) != 0 && s.ok()) s = Status(Errc::io_error, fmt::format("{}: {}", dst, std::strerror(errno)));
      if (!s.ok() && created) std::filesystem::remove(dst, ec);
    } else {
      if (std::filesystem::is_directory(src, ec)) return directory(src);
      std::ifstream in(src, std::ios::binary);
      if (!in) return fail(cmd, kExitFailure, fmt::format("{}: {}", src, std::strerror(errno)));
      const bool created = !f.stat(dst).ok();
      auto file = f.open(dst, {.write = true, .create = true, .truncate = true});
      if (!file.ok()) return fail(cmd, exit_code_for(file.status()), file.status().message());
      std::vector<char> buf(1u << 20);
      while (s.ok() && in) {
        in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        const auto n = static_cast<size_t>(in.gcount());
        if (n > 0) s = (*file)->append(buf.data(), n);
        bytes += n;
      }
      if (s.ok() && in.bad()) s = Status(Errc::io_error, fmt::format("{}: read error", src));
      if (s.ok()) s = (*file)->sync();
      if (Status c = (*file)->close(); s.ok()) s = c;
      if (!s.ok() && created) (void)f.unlink(dst);
    }
    if (!s.ok()) return fail(cmd, exit_code_for(s), s.message());
    fmt::print("copied {} bytes from {}{} to {}{}\n", bytes, from_fs ? "fs:" : "", src, to_fs ? "fs:" : "", dst);
    return kExitOk;
  });
}

Status remove_tree(fs::FileSystem& f, const std::string& path, bool recursive, uint64_t& removed) {
  auto st = f.stat(path);
  if (!st.ok()) return st.status();
  if (!st->directory) {
    if (Status s = f.unlink(path); !s.ok()) return s;
    ++removed;
    return Status::Ok();
  }
  if (path == "/") return Status(Errc::invalid_argument, "refusing to remove the root directory");
  if (recursive) {
    auto names = f.list(path);
    if (!names.ok()) return names.status();
    for (const auto& n : *names)
      if (Status s = remove_tree(f, join(path, n), true, removed); !s.ok()) return s;
  }
  if (Status s = f.rmdir(path); !s.ok()) return s;
  ++removed;
  return Status::Ok();
}

int run_rm(const FsArgs& a) {
  constexpr std::string_view cmd = "fs rm";
  return with_fs(cmd, a.device, false, [&](fs::FileSystem& f) {
    uint64_t removed = 0;
    Status s = remove_tree(f, a.path, a.recursive, removed);
    if (Status d = f.sync_dir("/"); s.ok()) s = d;  // whatever was removed is durable
    if (!s.ok()) return fail(cmd, exit_code_for(s), s.message());
    fmt::print("removed {} ({} entr{})\n", a.path, removed, removed == 1 ? "y" : "ies");
    return kExitOk;
  });
}

int run_mkdir(const FsArgs& a) {
  constexpr std::string_view cmd = "fs mkdir";
  return with_fs(cmd, a.device, false, [&](fs::FileSystem& f) {
    Status s = a.recursive ? f.mkdirs(a.path) : f.mkdir(a.path);
    if (s.ok()) s = f.sync_dir("/");
    if (!s.ok()) return fail(cmd, exit_code_for(s), s.message());
    fmt::print("created {}\n", a.path);
    return kExitOk;
  });
}

int run_df(const FsArgs& a) {
  return with_fs("fs df", a.device, true, [&](fs::FileSystem& f) {
    const fs::FsStat s = f.statfs();
    // "free" is what files can grow into; the reserve is free too, but kept for reopening
    // and compacting a full database, so it gets its own figure and is not counted as used.
    const uint64_t used = s.total_bytes - s.free_bytes - s.reserved_bytes;
    if (a.json) {
      print_json({{"device", f.device()},
                  {"total_bytes", s.total_bytes},
                  {"used_bytes", used},
                  {"free_bytes", s.free_bytes},
                  {"reserved_bytes", s.reserved_bytes},
                  {"files", s.files},
                  {"directories", s.directories},
                  {"block_size", s.block_size},
                  {"cluster_size", s.cluster_size}});
    } else {
      fmt::print("{}: {} total, {} used ({:.1f}%), {} free, {} reserved; {} file(s), {} director(ies); blocks {}, "
                 "clusters {}\n",
                 f.device(), format_size(s.total_bytes), format_size(used),
                 s.total_bytes ? 100.0 * static_cast<double>(used) / static_cast<double>(s.total_bytes) : 0.0,
                 format_size(s.free_bytes), format_size(s.reserved_bytes), s.files, s.directories,
                 format_size(s.block_size), format_size(s.cluster_size));
    }
    return kExitOk;
  });
}

}  // namespace

Subcommand add_mkfs(CLI::App& app) {
  auto a = std::make_shared<FsArgs>();
  CLI::App* c = app.add_subcommand("mkfs", "Format a device as an empty SluiceFS: DEVICE");
  c->add_option("device", a->device, "Device spec (uring:PATH, aio:PATH, lvol:..., nvme:...) or image path")->required();
  c->add_option("--cluster-size", a->cluster_size, "Allocation unit: a multiple of 4096")->capture_default_str();
  c->add_flag("--force", a->force, "Format a device that is not blank (a store, a filesystem, data), destroying it");
  return Subcommand{c, [a] { return run_mkfs(*a); }};
}

Subcommand add_fsck(CLI::App& app) {
  auto a = std::make_shared<FsArgs>();
  CLI::App* c = app.add_subcommand("fsck", "Check a SluiceFS image (read-only): DEVICE");
  c->add_option("device", a->device, "Device spec or image path")->required();
  c->add_flag("--json", a->json, "Print JSON on stdout");
  c->footer("Exit status: 0 clean, 1 damaged or unreadable (every problem is listed), 2 usage.");
  return Subcommand{c, [a] { return run_fsck(*a); }};
}

Subcommand add_fs(CLI::App& app) {
  auto a = std::make_shared<FsArgs>();
  CLI::App* fsc = app.add_subcommand("fs", "Files on a SluiceFS image: ls, stat, cat, cp, mkdir, rm, df");
  fsc->require_subcommand(1, 1);
  fsc->footer(
      "DEVICE is a device spec (uring:PATH, aio:PATH, lvol:..., nvme:...) or a plain path, meaning uring:PATH.\n"
      "ls, stat, cat, df and cp out of SluiceFS mount read-only. Exit status: 0 ok, 1 failure, 2 usage.");
  auto device = [&](CLI::App* c) { c->add_option("device", a->device, "Device spec or image path")->required(); };

  CLI::App* ls = fsc->add_subcommand("ls", "List a directory: DEVICE [PATH]");
  device(ls);
  ls->add_option("path", a->path, "Directory (default /)");
  ls->add_flag("-l", a->long_list, "Type, size, allocation and modification time");
  ls->add_flag("-R,--recursive", a->recursive, "List subdirectories too");
  ls->add_flag("--json", a->json, "Print JSON on stdout");

  CLI::App* st = fsc->add_subcommand("stat", "One file or directory: DEVICE PATH");
  device(st);
  st->add_option("path", a->path, "Path")->required();
  st->add_flag("--json", a->json, "Print JSON on stdout");

  CLI::App* cat = fsc->add_subcommand("cat", "Write a file to stdout: DEVICE PATH");
  device(cat);
  cat->add_option("path", a->path, "Path")->required();

  CLI::App* cp = fsc->add_subcommand("cp", "Copy a file in or out: DEVICE SRC DST (the SluiceFS side as fs:/PATH)");
  device(cp);
  cp->add_option("src", a->src, "Source: a host file, or fs:/PATH")->required();
  cp->add_option("dst", a->dst, "Destination: fs:/PATH, or a host file")->required();

  CLI::App* mk = fsc->add_subcommand("mkdir", "Create a directory: DEVICE PATH");
  device(mk);
  mk->add_option("path", a->path, "Path")->required();
  mk->add_flag("-p,--parents", a->recursive, "Create missing parents; no error if it exists");

  CLI::App* rm = fsc->add_subcommand("rm", "Remove a file or an empty directory: DEVICE PATH");
  device(rm);
  rm->add_option("path", a->path, "Path")->required();
  rm->add_flag("-r,--recursive", a->recursive, "Remove a directory and everything below it");

  CLI::App* df = fsc->add_subcommand("df", "Space and counts: DEVICE");
  device(df);
  df->add_flag("--json", a->json, "Print JSON on stdout");

  auto run = [a, ls, st, cat, cp, mk, rm, df]() -> int {
    if (ls->parsed()) return run_ls(*a);
    if (st->parsed()) return run_stat(*a);
    if (cat->parsed()) return run_cat(*a);
    if (cp->parsed()) return run_cp(*a);
    if (mk->parsed()) return run_mkdir(*a);
    if (rm->parsed()) return run_rm(*a);
    if (df->parsed()) return run_df(*a);
    return kExitUsage;
  };
  return Subcommand{fsc, run};
}

}  // namespace sluice::cli
