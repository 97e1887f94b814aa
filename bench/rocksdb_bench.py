#!/usr/bin/python3
"""Debian's stock db_bench on SluiceFS (through the plugin, LD_PRELOAD) and on ext4, side by
side in one run, same flags; every cell is the median of --repeat runs.

Pairs:
  device  SluiceFS on the uring bdev over a raw loop device  vs  ext4 on a second loop device;
          both loop devices over same-size files on the root filesystem. Beside them the
          device's ceiling for durable appends: fio 4 KiB write + fsync, QD1, on the raw loop.
  ram     SluiceFS on the malloc bdev (formatted when opened)  vs  ext4 on a loop device over
          a /dev/shm file: the software cost of each stack.
Workloads: fillseq, fillrandom, overwrite --sync=1, readrandom and multireadrandom (batched)
with --use_direct_reads and a small block cache, readwhilewriting; 1 and 2 threads.
SluiceFS gets a read cache (--cache-mb, plugin option cache=) as the counterpart of the page
cache ext4 uses for buffered reads; direct reads bypass both.
Prints ops/s and the ratio SluiceFS/ext4, writes bench/results/rocksdb.json and a PNG.
Needs root (loop devices, mount).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import RESULTS, ROOT, Ext4Mount, LoopDevice, median_of, progress, pyplot, run, scratch_file  # noqa: E402

# Small memtables and files so that even a short run flushes and compacts: the storage
# stack, not the memtable, is what is measured. No compression: its CPU is the same on
# both sides and would only dilute the difference.
COMMON = ["--compression_type=none", "--write_buffer_size=4194304", "--target_file_size_base=4194304",
          "--max_bytes_for_level_base=16777216", "--histogram=0", "--statistics=0", "--seed=1"]

# name, db_bench --benchmarks, extra flags, the benchmark whose ops/s is reported
WORKLOADS = [
    ("fillseq", "fillseq", [], "fillseq"),
    ("fillrandom", "fillrandom", [], "fillrandom"),
    ("overwrite-sync", "overwrite", ["--sync=1", "WRITES"], "overwrite"),
    ("readrandom-direct", "fillrandom,readrandom", ["--use_direct_reads=1", "--cache_size=1048576"], "readrandom"),
    ("multireadrandom", "fillrandom,multireadrandom",
     ["--use_direct_reads=1", "--cache_size=1048576", "--multiread_batched=1", "--batch_size=8"], "multireadrandom"),
    ("readwhilewriting", "fillrandom,readwhilewriting", [], "readwhilewriting"),
    # The same with the writer held at 4 MiB/s (about 36,000 writes/s), as RocksDB's own
    # benchmark.sh runs readwhilewriting: unthrottled, the side whose writer is faster spends
    # more of the 2 cores on writes, flushes and compactions, and reads less for it.
    ("readwhilewriting-4MiB/s", "fillrandom,readwhilewriting", ["--benchmark_write_rate_limit=4194304"],
     "readwhilewriting"),
]

RESULT_LINE = re.compile(r"^(\w+)\s*:\s*([\d.]+) micros/op (\d+) ops/sec", re.M)


class Side:
    """One filesystem under test: how db_bench reaches it."""

    def __init__(self, label, db, env=None, fs_uri=None):
        self.label, self.db, self.env, self.fs_uri = label, db, env, fs_uri

    def db_bench(self, args, benchmarks, extra, threads, report):
        # Counts, not --duration: with a duration, fills run for that long and the faster side
        # would then read from a bigger database.
        extra = [f"--writes={args.sync_writes}" if e == "WRITES" else e for e in extra]
        cmd = [args.db_bench, f"--benchmarks={benchmarks}", f"--db={self.db}", f"--threads={threads}",
               f"--num={args.num}", f"--reads={args.reads}"] + COMMON + extra
        if self.fs_uri:
            cmd.append(f"--fs_uri={self.fs_uri}")
        env = os.environ | (self.env or {})
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        found = {m.group(1): float(m.group(3)) for m in RESULT_LINE.finditer(p.stdout)}
        if p.returncode != 0 or report not in found:
            tail = (p.stdout + p.stderr).strip().splitlines()[-8:]
            raise RuntimeError(f"db_bench on {self.label} ({benchmarks}) failed, exit {p.returncode}:\n  " +
                               "\n  ".join(tail))
        return {"ops_per_sec": found[report]}


def durable_append_ceiling(dev, seconds=5):
    """fio: 4 KiB sequential writes, each followed by fsync, QD1, on the raw device."""
    out = run(["fio", "--name=ceiling", f"--filename={dev}", "--rw=write", "--bs=4k", "--ioengine=psync",
               "--direct=1", "--fsync=1", "--size=256M", "--time_based", f"--runtime={seconds}",
               "--output-format=json"]).stdout
    return {"ops_per_sec": json.loads(out)["jobs"][0]["write"]["iops"]}


def measure_pair(args, pair, sluice, ext4, rows):
    for name, benchmarks, extra, report in WORKLOADS:
        if args.workload and name not in args.workload:
            continue
        for threads in args.threads:
            progress(f"{pair}: {name}, {threads} thread(s)")
            a = median_of(lambda: sluice.db_bench(args, benchmarks, extra, threads, report), args.repeat)
            b = median_of(lambda: ext4.db_bench(args, benchmarks, extra, threads, report), args.repeat)
            rows.append({"pair": pair, "workload": name, "threads": threads, "sluice": a, "ext4": b,
                         "ratio": a["ops_per_sec"] / b["ops_per_sec"] if b["ops_per_sec"] else 0})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build/release"), help="Sluice build tree")
    ap.add_argument("--db-bench", default=shutil.which("db_bench") or "/usr/bin/db_bench")
    ap.add_argument("--num", type=int, default=200000, help="keys per fill")
    ap.add_argument("--reads", type=int, default=100000, help="reads per thread")
    ap.add_argument("--sync-writes", type=int, default=3000, help="writes per thread of overwrite --sync=1")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size-mb", type=int, default=2048, help="size of each device")
    ap.add_argument("--threads", type=int, action="append", help="thread counts (default 1 and 2)")
    ap.add_argument("--cache-mb", type=int, default=256,
                    help="SluiceFS read cache (the page cache's counterpart for buffered reads); 0: none")
    ap.add_argument("--workload", action="append", help="only these workloads")
    ap.add_argument("--skip", action="append", default=[], help="skip a pair: device, ram")
    args = ap.parse_args()
    args.threads = args.threads or [1, 2]
    build = Path(args.build)
    plugin = build / "src/rocksdb/libsluice_rocksdb.so"
    sluice = build / "apps/sluice/sluice"
    for need in (plugin, sluice, Path(args.db_bench)):
        if not need.exists():
            sys.exit(f"bench: {need} not found (build first: scripts/build.sh build/release; db_bench: rocksdb-tools)")
    if os.geteuid() != 0:
        sys.exit("bench: needs root for loop devices and mounting ext4")
    preload = {"LD_PRELOAD": str(plugin)}
    cache = f"?cache={args.cache_mb}M" if args.cache_mb else ""

    RESULTS.mkdir(parents=True, exist_ok=True)
    rows, ceiling = [], None
    cleanup = []
    try:
        if "device" not in args.skip:
            files = [scratch_file(RESULTS, args.size_mb, prefix=f"sluice-bench-{k}-") for k in ("raw", "ext4")]
            cleanup += [f.unlink for f in files]
            raw, kdev = LoopDevice(files[0]), LoopDevice(files[1])
            cleanup += [raw.close, kdev.close]
            progress(f"device: durable-append ceiling of {raw.dev} (fio write+fsync QD1)")
            ceiling = median_of(lambda: durable_append_ceiling(raw.dev), args.repeat)
            run([str(sluice), "mkfs", "--force", f"uring:{raw.dev}"])  # over the ceiling run's own writes
            mnt = Ext4Mount(kdev.dev)
            cleanup.append(mnt.close)
            measure_pair(args, "device", Side("SluiceFS uring", "/rocksdb", preload, f"sluice://uring:{raw.dev}{cache}"),
                         Side("ext4", str(mnt.path / "rocksdb")), rows)
        if "ram" not in args.skip:
            shm = scratch_file("/dev/shm", args.size_mb)
            cleanup.append(shm.unlink)
            kdev = LoopDevice(shm)
            cleanup.append(kdev.close)
            mnt = Ext4Mount(kdev.dev)
            cleanup.append(mnt.close)
            measure_pair(args, "ram", Side("SluiceFS malloc", "/rocksdb", preload, f"sluice://malloc:{args.size_mb}M{cache}"),
                         Side("ext4 (shm loop)", str(mnt.path / "rocksdb")), rows)
    finally:
        for undo in reversed(cleanup):
            try:
                undo()
            except OSError:
                pass
    report(rows, ceiling, args)


def report(rows, ceiling, args):
    print(f"\nRocksDB db_bench {Path(args.db_bench).name} (Debian 7.8), ops/s, median of {args.repeat} runs; "
          f"{args.num} keys, {args.reads} reads and {args.sync_writes} sync writes per thread")
    hdr = f"{'pair':<7}{'workload':<25}{'thr':>4}{'SluiceFS':>12}{'ext4':>12}{'Sluice/ext4':>13}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['pair']:<7}{r['workload']:<25}{r['threads']:>4}{r['sluice']['ops_per_sec']:>12.0f}"
              f"{r['ext4']['ops_per_sec']:>12.0f}{r['ratio']:>13.2f}")
    if ceiling:
        print(f"device ceiling (fio 4 KiB write+fsync QD1 on the raw loop device): {ceiling['ops_per_sec']:.0f}/s")
        for r in rows:
            if r["pair"] == "device" and r["workload"] == "overwrite-sync":
                print(f"  overwrite --sync=1, {r['threads']} thread(s): SluiceFS at "
                      f"{r['sluice']['ops_per_sec'] / ceiling['ops_per_sec']:.2f} of the ceiling, ext4 at "
                      f"{r['ext4']['ops_per_sec'] / ceiling['ops_per_sec']:.2f}")
    by = {(r["pair"], r["workload"], r["threads"]): r for r in rows}
    for (pair, wl, t), r in sorted(by.items()):
        one = by.get((pair, wl, 1))
        if t == 2 and one and one["sluice"]["ops_per_sec"]:
            print(f"  {pair} {wl}: SluiceFS 2 threads / 1 thread = {r['sluice']['ops_per_sec'] / one['sluice']['ops_per_sec']:.2f}")
    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "num": args.num, "reads": args.reads,
            "sync_writes": args.sync_writes,
            "repeat": args.repeat, "size_mb": args.size_mb, "cache_mb": args.cache_mb, "nproc": os.cpu_count(), "common_flags": COMMON,
            "ceiling": ceiling, "rows": rows}
    (RESULTS / "rocksdb.json").write_text(json.dumps(meta, indent=1))
    plot(rows)


def plot(rows):
    plt = pyplot()
    if not plt or not rows:
        return
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.7), 4.5))
    x = range(len(rows))
    ax.bar(list(x), [r["ratio"] for r in rows], 0.6)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(list(x))
    ax.set_xticklabels([f"{r['pair']}\n{r['workload']}\n{r['threads']}T" for r in rows], fontsize=6)
    ax.set_ylabel("SluiceFS ops/s / ext4 ops/s")
    ax.set_title("db_bench: SluiceFS vs ext4 (same run, medians)")
    fig.tight_layout()
    fig.savefig(RESULTS / "rocksdb.png", dpi=110)


if __name__ == "__main__":
    main()
