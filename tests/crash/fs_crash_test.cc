// SluiceFS under power cuts and process death (docs/design.md, "Two crash models").
//
// Seeded workloads run on a crashsim device that cuts the power at a chosen I/O boundary;
// each write not yet flushed then survives, vanishes or tears. After the cut the file system
// is mounted from the post-crash image (recovery: journal replay, orphan collection, tail
// markers) and must:
//   - mount, and pass check() (which includes the blobstore's fsck: nothing leaked or
//     allocated twice);
//   - appends workload: every file holds at least the bytes of its last acknowledged sync,
//     and every byte it holds is a byte that was appended there (nothing unsynced is
//     corrupt: a torn or lost write is cut off, never exposed);
//   - namespace workload: the tree (names and contents) equals the state after some
//     operation at or after the last acknowledged sync or sync_dir (every synced change is
//     there, none is half-applied: rename-replace is atomic).
// Small workloads are cut at every boundary, large ones at random boundaries.
//
// The second crash model, process death: the same workloads run in a child process on a
// file-backed device, which is killed (SIGKILL) after N operations with its files open and
// nothing synced since; a mount in this process must find every operation's effect, synced
// or not (the tree equals the one the child saw just before it died).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "bdev/bdev.h"
#include "bdev/crashsim.h"
#include "crash_report.h"
#include "fs/fs.h"

namespace sluice::fs {
namespace {

constexpr const char* kBase = "fscrash_base";
constexpr const char* kCrash = "fscrash_cs";

std::string pattern(uint64_t seed, size_t n) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x1234567;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

enum class Kind { appends, names, stream };

struct Trial {
  Kind kind;
  std::string spec;  // the base device
  uint64_t workload_seed;
  int ops;
  uint64_t cut;  // 0: no cut (to count boundaries)
  uint64_t crash_seed;
};

struct Outcome {
  uint64_t boundaries = 0;
  std::string failure;
};

std::string read_file(FileSystem& fs, const std::string& path, Status* st) {
  auto f = fs.open(path, {});
  if (!f.ok()) {
    *st = f.status();
    return {};
  }
  std::string out((*f)->size(), '\0');
  auto n = (*f)->pread(out.data(), out.size(), 0);
  if (!n.ok()) *st = n.status();
  out.resize(n.ok() ? *n : 0);
  (void)(*f)->close();
  return out;
}

// ---- appends: files in /db get appends, syncs and reopens --------------------------------

struct AppendModel {
  bool setup_done = false;
  std::vector<std::string> written;  // every byte ever handed to append, per file
  std::vector<uint64_t> synced;      // length at the last acknowledged sync
  // A truncate cut short may or may not have become durable: the content before it.
  int alt_file = -1;
  std::string alt_written;
  uint64_t alt_synced = 0;
};

constexpr int kAppendFiles = 3;

std::string append_path(int i) { return fmt::format("/db/{:06}.log", i); }

// Runs until the first failure (the power cut); the model records what was acknowledged.
// `at_end` runs after the last operation, before the files are closed.
void run_appends(FileSystem& fs, uint64_t seed, int ops, AppendModel& m, const std::function<void()>& at_end = {}) {
  std::mt19937_64 rng(seed);
  m.written.assign(kAppendFiles, "");
  m.synced.assign(kAppendFiles, 0);
  std::vector<std::unique_ptr<File>> files(kAppendFiles);
  auto cleanup = [&] {
    for (auto& f : files)
      if (f) (void)f->close();
  };
  if (!fs.mkdir("/db").ok()) return cleanup();
  for (int i = 0; i < kAppendFiles; ++i) {
    auto f = fs.open(append_path(i), {.write = true, .create = true});
    if (!f.ok()) return cleanup();
    files[i] = std::move(f.value());
  }
  if (!fs.sync_dir("/db").ok()) return cleanup();
  m.setup_done = true;
  for (int op = 0; op < ops; ++op) {
    const int i = static_cast<int>(rng() % kAppendFiles);
    const uint64_t r = rng() % 100;
    Status st;
    if (r < 50) {
      const uint64_t kind = rng() % 10;
      const size_t n = kind < 6 ? 1 + rng() % 60 : kind < 9 ? 1 + rng() % 5000 : 1 + rng() % 300000;
      std::string data = pattern(seed * 1000003 + op, n);
      m.written[i] += data;  // before the call: a failed append may still have reached the device
      st = files[i]->append(data.data(), n);
    } else if (r < 82) {
      const uint64_t len = m.written[i].size();
      st = files[i]->sync();
      if (st.ok()) m.synced[i] = len;
    } else if (r < 88) {
      // A shrinking truncate is durable when it returns.
      const uint64_t size = m.written[i].empty() ? 0 : rng() % m.written[i].size();
      m.alt_file = i;
      m.alt_written = m.written[i];
      m.alt_synced = m.synced[i];
      m.written[i].resize(size);
      m.synced[i] = std::min(m.synced[i], size);
      st = files[i]->truncate(size);
      if (st.ok()) {
        m.synced[i] = size;
        m.alt_file = -1;
      }
    } else {
      st = files[i]->close();
      files[i].reset();
      if (st.ok()) {
        auto f = fs.open(append_path(i), {.write = true});
        st = f.status();
        if (f.ok()) files[i] = std::move(f.value());
      }
    }
    if (!st.ok()) return cleanup();
  }
  if (at_end) at_end();
  cleanup();
}

std::string check_appends(FileSystem& fs, const AppendModel& m) {
  auto names = fs.list("/db");
  if (!names.ok()) return m.setup_done ? "/db is missing: " + names.status().to_string() : "";
  for (int i = 0; i < kAppendFiles; ++i) {
    Status st;
    std::string got = read_file(fs, append_path(i), &st);
    if (!st.ok()) {
      if (!m.setup_done && st.code() == Errc::not_found) continue;
      return fmt::format("{}: {}", append_path(i), st.to_string());
    }
    const std::string& w = i < static_cast<int>(m.written.size()) ? m.written[i] : std::string();
    const uint64_t synced = i < static_cast<int>(m.synced.size()) ? m.synced[i] : 0;
    if (i == m.alt_file && got.size() >= m.alt_synced && got.size() <= m.alt_written.size() &&
        got == m.alt_written.substr(0, got.size()))
      continue;  // the interrupted truncate did not happen
    if (got.size() < synced) return fmt::format("{}: {} bytes, but {} were synced", append_path(i), got.size(), synced);
    if (got.size() > w.size()) return fmt::format("{}: {} bytes, but only {} were written", append_path(i), got.size(), w.size());
    if (got != w.substr(0, got.size())) {
      size_t k = 0;
      while (got[k] == w[k]) ++k;
      return fmt::format("{}: byte {} of {} differs from what was written (synced {})", append_path(i), k, got.size(), synced);
    }
  }
  return "";
}

// ---- names: create (write + sync), rename (often replacing), unlink, mkdir, sync_dir ------

using Tree = std::map<std::string, std::string>;  // path -> content ("/" suffix: a directory)

struct NamesModel {
  std::vector<Tree> states{Tree{}};
  size_t durable = 0;  // states[durable..] are acceptable after a crash
};

void run_names(FileSystem& fs, uint64_t seed, int ops, NamesModel& m, const std::function<void()>& at_end = {}) {
  std::mt19937_64 rng(seed);
  Tree cur;
  std::vector<std::unique_ptr<File>> held;  // unlinked while open
  auto push = [&] { m.states.push_back(cur); };
  auto files = [&] {
    std::vector<std::string> v;
    for (auto& [p, c] : cur)
      if (p.back() != '/') v.push_back(p);
    return v;
  };
  auto dirs = [&] {
    std::vector<std::string> v{""};
    for (auto& [p, c] : cur)
      if (p.back() == '/') v.push_back(p.substr(0, p.size() - 1));
    return v;
  };
  auto done = [&] {
    for (auto& f : held) (void)f->close();
  };
  for (int op = 0; op < ops; ++op) {
    const uint64_t r = rng() % 100;
    auto ds = dirs();
    auto fs_list = files();
    const std::string dir = ds[rng() % ds.size()];
    const std::string name = fmt::format("{}/f{}", dir, rng() % 6);
    if (r < 35 || fs_list.empty()) {
      if (cur.contains(name + "/")) continue;
      std::string data = pattern(seed * 7919 + op, 1 + rng() % 9000);
      // Each step's outcome is pushed before the step: a step that fails at the cut may
      // still have become durable. Recovery finds the file empty or whole, never partial.
      cur[name] = "";
      push();
      auto f = fs.open(name, {.write = true, .create = true, .truncate = true});
      if (!f.ok()) return done();
      cur[name] = data;
      push();
      Status st = (*f)->append(data.data(), data.size());
      if (st.ok()) st = (*f)->sync();
      if (st.ok()) m.durable = m.states.size() - 1;
      Status cl = (*f)->close();
      if (!st.ok() || !cl.ok()) return done();
    } else if (r < 65) {
      const std::string from = fs_list[rng() % fs_list.size()];
      const std::string to = rng() % 2 ? fs_list[rng() % fs_list.size()] : name;
      if (cur.contains(to + "/")) continue;
      if (from != to) {
        cur[to] = cur[from];
        cur.erase(from);
      }
      push();
      if (!fs.rename(from, to).ok()) return done();
    } else if (r < 75) {
      const std::string victim = fs_list[rng() % fs_list.size()];
      if (rng() % 2) {
        auto f = fs.open(victim, {});
        if (!f.ok()) return done();
        held.push_back(std::move(f.value()));
      }
      cur.erase(victim);
      push();
      if (!fs.unlink(victim).ok()) return done();
    } else if (r < 85) {
      const std::string d = fmt::format("/d{}", rng() % 3);
      if (cur.contains(d + "/") || cur.contains(d)) continue;
      cur[d + "/"] = "";
      push();
      if (!fs.mkdir(d).ok()) return done();
    } else {
      if (!fs.sync_dir("/").ok()) return done();
      m.durable = m.states.size() - 1;
    }
  }
  if (at_end) at_end();
  done();
}

Result<Tree> read_tree(FileSystem& fs) {
  Tree t;
  std::vector<std::string> todo{""};
  while (!todo.empty()) {
    std::string d = todo.back();
    todo.pop_back();
    auto names = fs.list(d.empty() ? "/" : d);
    if (!names.ok()) return names.status();
    for (auto& n : *names) {
      std::string p = d + "/" + n;
      auto st = fs.stat(p);
      if (!st.ok()) return st.status();
      if (st->directory) {
        t[p + "/"] = "";
        todo.push_back(p);
      } else {
        Status rs;
        t[p] = read_file(fs, p, &rs);
        if (!rs.ok()) return rs;
      }
    }
  }
  return t;
}

std::string describe(const Tree& t) {
  std::string s;
  for (auto& [p, c] : t) s += fmt::format("  {} ({} bytes)\n", p, c.size());
  return s;
}

std::string check_names(FileSystem& fs, const NamesModel& m) {
  auto t = read_tree(fs);
  if (!t.ok()) return "reading the tree: " + t.status().to_string();
  for (size_t k = m.durable; k < m.states.size(); ++k)
    if (m.states[k] == *t) return "";
  return fmt::format("recovered tree matches no state at or after the last sync (#{} of {}):\n{}last synced:\n{}",
                     m.durable, m.states.size(), describe(*t), describe(m.states[m.durable]));
}

// ---- one trial ----------------------------------------------------------------------------

Outcome run_trial(const Trial& t) {
  Outcome out;
  auto fail = [&](std::string why) {
    out.failure = fmt::format("{} workload {} on {} ops {} cut {} seed {}: {}",
                              t.kind == Kind::appends ? "appends" : "names", t.workload_seed, t.spec, t.ops, t.cut,
                              t.crash_seed, why);
    return out;
  };
  if (auto b = bdev::create(t.spec, kBase); !b.ok()) return fail(b.status().to_string());
  FormatOptions fo;
  fo.cluster_size = 64 * 1024;
  if (Status st = FileSystem::format(kBase, fo); !st.ok()) return fail(st.to_string());
  auto cs = bdev::CrashSim::stack(kBase, kCrash);
  if (!cs.ok()) return fail(cs.status().to_string());
  cs->set_seed(t.crash_seed);
  if (t.cut) (void)cs->cut_power_at(t.cut);

  AppendModel am;
  NamesModel nm;
  {
    MountOptions mo;
    mo.write_buffer_dir = "";  // a power cut empties RAM: no write buffer survives it
    auto fs = FileSystem::mount(kCrash, mo);
    if (!fs.ok()) {
      if (!cs->powered_off()) return fail("mount before the cut: " + fs.status().to_string());
    } else {
      if (t.kind == Kind::appends) {
        run_appends(**fs, t.workload_seed, t.ops, am);
      } else {
        run_names(**fs, t.workload_seed, t.ops, nm);
      }
      if (!t.cut && !cs->powered_off()) {
        // The uncut run must succeed throughout.
        if (t.kind == Kind::appends && !am.setup_done) return fail("setup failed without a cut");
      }
      cs->cut_power();  // also ends a run that finished before its cut point
      (*fs)->abandon();
    }
  }
  out.boundaries = cs->boundaries();
  if (Status st = bdev::unregister(kCrash); !st.ok()) return fail(st.to_string());

  MountOptions mo;
  mo.write_buffer_dir = "";
  auto fs = FileSystem::mount(kBase, mo);
  if (!fs.ok()) return fail("recovery failed: " + fs.status().to_string());
  auto report = (*fs)->check();
  if (!report.ok()) return fail("check: " + report.status().to_string());
  if (!report->ok()) return fail("check: " + report->problems.front());
  if (report->orphans != 0) return fail(fmt::format("{} orphan(s) left after mount", report->orphans));
  std::string bad = t.kind == Kind::appends ? check_appends(**fs, am) : check_names(**fs, nm);
  if (!bad.empty()) return fail(bad);
  // Still usable: remount once more (recovery of the recovered image is a no-op).
  if (Status st = (*fs)->unmount(); !st.ok()) return fail("unmount after recovery: " + st.to_string());
  fs.value().reset();
  (void)bdev::unregister(kBase);
  return out;
}

void cleanup() {
  (void)bdev::unregister(kCrash);
  (void)bdev::unregister(kBase);
}

struct Tally {
  uint64_t tried = 0, failed = 0;
  void run(const Trial& t) {
    Outcome o = run_trial(t);
    ++tried;
    if (!o.failure.empty()) {
      ++failed;
      if (failed <= 5) ADD_FAILURE() << o.failure;
      cleanup();
    }
  }
};

uint64_t count_boundaries(Trial t) {
  t.cut = 0;
  Outcome full = run_trial(t);
  EXPECT_TRUE(full.failure.empty()) << full.failure;
  cleanup();
  return full.boundaries;
}

const char* kSpecs[] = {"malloc:12M", "malloc:12M?bs=4096"};

TEST(FsCrash, SmallWorkloadsCutAtEveryBoundary) {
  Tally tally;
  for (const char* spec : kSpecs) {
    for (Kind kind : {Kind::appends, Kind::names}) {
      for (uint64_t workload : {1, 2, 3}) {
        Trial t{kind, spec, workload, 18, 0, 0};
        const uint64_t b = count_boundaries(t);
        EXPECT_GT(b, 5u);
        const testing::BoundaryStride stride = testing::boundary_stride(workload);
        for (uint64_t cut = stride.first; cut <= b + 1; cut += stride.step) {
          t.cut = cut;
          t.crash_seed = workload * 7777 + cut;
          tally.run(t);
        }
      }
    }
  }
  testing::report_points("sluicefs crash suite (every boundary)", "crash points", tally.tried, tally.failed);
  EXPECT_EQ(tally.failed, 0u);
}

TEST(FsCrash, LargeWorkloadsRandomCuts) {
  constexpr int kOps = 80;
  constexpr int kCuts = testing::random_cut_budget(130);  // 1040 in all in a release build
  Tally tally;
  std::mt19937_64 rng(20261122);
  for (const char* spec : kSpecs) {
    for (Kind kind : {Kind::appends, Kind::names}) {
      for (uint64_t workload : {101, 102}) {
        Trial t{kind, spec, workload, kOps, 0, 0};
        const uint64_t b = count_boundaries(t);
        for (int i = 0; i < kCuts; ++i) {
          t.cut = 1 + rng() % (b + 1);
          t.crash_seed = rng();
          tally.run(t);
        }
      }
    }
  }
  testing::report_points("sluicefs crash suite (random cuts)", "crash points", tally.tried, tally.failed);
  EXPECT_EQ(tally.failed, 0u);
}

// ---- process death ------------------------------------------------------------------------

struct KillTrial {
  Kind kind;
  uint64_t seed;
  int ops;  // the child dies after this many operations
};

// A WAL written with sync=false: one file, `ops` x 64 KiB of records, never synced (so the
// buffer is pushed many times and its length runs far past the committed size).
void run_stream(FileSystem& fs, uint64_t seed, int ops, const std::function<void()>& at_end) {
  std::mt19937_64 rng(seed);
  auto f = fs.open("/wal", {.write = true, .create = true});
  if (!f.ok()) return;
  for (int op = 0; op < ops; ++op) {
    for (size_t done = 0; done < (64u << 10);) {
      const size_t n = 1 + rng() % 700;
      std::string data = pattern(seed * 31 + op * 4096 + done, n);
      if (!(*f)->append(data.data(), n).ok()) return;
      done += n;
    }
  }
  if (at_end) at_end();
  (void)(*f)->close();
}

void run_workload(FileSystem& fs, const KillTrial& t, const std::function<void()>& at_end) {
  if (t.kind == Kind::stream) {
    run_stream(fs, t.seed, t.ops, at_end);
  } else if (t.kind == Kind::appends) {
    AppendModel am;
    run_appends(fs, t.seed, t.ops, am, at_end);
  } else {
    NamesModel nm;
    run_names(fs, t.seed, t.ops, nm, at_end);
  }
}

// The tree the child had when it died: the same operations on a RAM device.
Result<Tree> reference_tree(const KillTrial& t) {
  constexpr const char* kRef = "fskill_ref";
  if (auto b = bdev::create("malloc:64M", kRef); !b.ok()) return b.status();
  Result<Tree> tree = Status(Errc::aborted, "the workload failed before its last operation");
  {
    SLUICE_RETURN_IF_ERROR(FileSystem::format(kRef));
    MountOptions mo;
    mo.write_buffer_dir = "";
    auto fs = FileSystem::mount(kRef, mo);
    if (!fs.ok()) return fs.status();
    run_workload(**fs, t, [&] { tree = read_tree(**fs); });
    SLUICE_RETURN_IF_ERROR((*fs)->unmount());
  }
  (void)bdev::unregister(kRef);
  return tree;
}

std::string run_kill_trial(const KillTrial& t, const std::string& dir) {
  auto fail = [&](std::string why) {
    const char* kind = t.kind == Kind::appends ? "appends" : t.kind == Kind::names ? "names" : "stream";
    return fmt::format("{} workload {} killed after {} ops: {}", kind, t.seed, t.ops, why);
  };
  const std::string image = dir + "/image", buffers = dir + "/buffers", spec = "uring:" + image;
  std::filesystem::remove_all(buffers);
  {
    int fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::ftruncate(fd, 64 << 20) != 0) return fail("cannot make the image " + image);
    ::close(fd);
  }
  if (Status st = FileSystem::format(spec); !st.ok()) return fail(st.to_string());
  auto expected = reference_tree(t);
  if (!expected.ok()) return fail("reference run: " + expected.status().to_string());

  const pid_t pid = ::fork();
  if (pid < 0) return fail("fork failed");
  if (pid == 0) {
    MountOptions mo;
    mo.write_buffer_dir = buffers;
    auto fs = FileSystem::mount(spec, mo);
    if (!fs.ok()) ::_exit(3);
    run_workload(**fs, t, [] { ::kill(::getpid(), SIGKILL); });
    ::_exit(4);  // the workload failed before its last operation
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return fail("the child did not finish in 60 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
    return fail(fmt::format("the child ended with exit code {} before the kill", WIFEXITED(status) ? WEXITSTATUS(status) : -1));

  MountOptions mo;
  mo.write_buffer_dir = buffers;
  auto fs = FileSystem::mount(spec, mo);
  if (!fs.ok()) return fail("mount after the kill: " + fs.status().to_string());
  auto report = (*fs)->check();
  if (!report.ok()) return fail("check: " + report.status().to_string());
  if (!report->ok()) return fail("check: " + report->problems.front());
  auto got = read_tree(**fs);
  if (!got.ok()) return fail("reading the tree: " + got.status().to_string());
  if (Status st = (*fs)->unmount(); !st.ok()) return fail("unmount: " + st.to_string());
  if (*got != *expected) {
    for (auto& [path, content] : *expected) {
      auto it = got->find(path);
      if (it == got->end()) return fail(path + " is missing after the kill");
      if (it->second != content)
        return fail(fmt::format("{} has {} bytes after the kill, {} before (or other bytes)", path, it->second.size(),
                                content.size()));
    }
    return fail("the recovered tree has entries the child never made:\n" + describe(*got));
  }
  std::error_code ec;
  if (std::filesystem::exists(buffers, ec) && !std::filesystem::is_empty(buffers, ec)) {
    for (auto& e : std::filesystem::recursive_directory_iterator(buffers, ec))
      if (e.is_regular_file()) return fail("write buffer left after the replay: " + e.path().string());
  }
  return "";
}

TEST(FsProcessDeath, EveryOperationSurvivesAKill) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = fmt::format("{}/fs_kill_XXXXXX", tmp && *tmp ? tmp : "/tmp");
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  std::mt19937_64 rng(20261205);
  uint64_t tried = 0, failed = 0;
  for (Kind kind : {Kind::appends, Kind::names, Kind::stream}) {
    for (uint64_t seed : {301, 302, 303}) {
      for (int i = 0; i < 4; ++i) {
        // A stream op is 64 KiB: up to 12 MiB, three times the recovery window of a size record.
        const int ops = kind == Kind::stream ? 1 + static_cast<int>(rng() % 192) : 1 + static_cast<int>(rng() % 60);
        const KillTrial t{kind, seed, ops};
        std::string why = run_kill_trial(t, dir);
        ++tried;
        if (!why.empty()) {
          ++failed;
          if (failed <= 5) ADD_FAILURE() << why;
        }
      }
    }
  }
  std::filesystem::remove_all(dir);
  testing::report_points("sluicefs process-death suite (SIGKILL after N operations)", "kills", tried, failed);
  EXPECT_EQ(failed, 0u);
}

}  // namespace
}  // namespace sluice::fs
