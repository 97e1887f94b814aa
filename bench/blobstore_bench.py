#!/usr/bin/python3
"""Blobstore and lvol benchmarks, each side by side with its peer in one run.

  metadata  create+sync, resize+sync, xattr+sync per second and the cost of a first write
            to a thin blob vs a write to an allocated cluster (bench/blob_md_bench), on
            malloc and on a uring file
  data      4 KiB random read at QD32 on one core: an lvol (thick, filled) vs a raw device of
            the same size and filesystem (uring on a filled file), with `sluice perf`, on
            /dev/shm and on the root filesystem
Medians of --repeat runs; ratios lvol/raw. Writes bench/results/blobstore.json and a PNG.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import RESULTS, ROOT, progress, pyplot, sluice_perf  # noqa: E402


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    build = ROOT / "build/release"
    ap.add_argument("--sluice", default=str(build / "apps/sluice/sluice"))
    ap.add_argument("--md-bench", default=str(build / "bench/blob_md_bench"))
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--size-mb", type=int, default=1024)
    args = ap.parse_args()
    for exe in (args.sluice, args.md_bench):
        if not os.access(exe, os.X_OK):
            sys.exit(f"bench: {exe} not found; build first (scripts/build.sh build/release)")

    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "repeat": args.repeat, "seconds": args.seconds,
              "metadata": [], "data": []}
    files = []
    try:
        # Per filesystem: a file for the store and, as the raw peer, a file the size of the volume.
        for where in ("/dev/shm", str(RESULTS)):
            RESULTS.mkdir(parents=True, exist_ok=True)
            for size_mb in (args.size_mb + 64, args.size_mb):
                fd, path = tempfile.mkstemp(prefix="sluice-blobbench-", dir=where)
                os.close(fd)
                os.truncate(path, size_mb << 20)
                files.append(Path(path))

        for spec in (f"malloc:{args.size_mb}M", f"uring:{files[2]}"):
            progress(f"metadata on {spec.split(':')[0]}")
            runs = [json.loads(run([args.md_bench, spec, "--ops", "1000"])) for _ in range(args.repeat)]
            row = {"device": spec.split(":")[0]}
            for k in ("create_sync_per_s", "resize_sync_per_s", "xattr_sync_per_s", "thin_first_write_us_p50",
                      "allocated_write_us_p50"):
                row[k] = med(runs, k)
            result["metadata"].append(row)

        for label, f, peer in (("shm file", files[0], files[1]), ("rootfs file", files[2], files[3])):
            progress(f"data on {label}")
            dev = f"uring:{f}"
            run([args.sluice, "lvol", "create-store", "--force", dev, "pool"])  # the metadata run formatted one
            run([args.sluice, "lvol", "create", "-d", dev, "vol", f"{args.size_mb}M"])
            vol = f"lvol:{dev}/vol"
            raw = f"uring:{peer}"
            for target in (vol, raw):  # real data everywhere: holes would read faster
                run([args.sluice, "perf", "-T", target, "-w", "write", "-o", "1M", "-q", "8", "-t", "6",
                     "-c", str(args.core)])
            raw_runs, lvol_runs = [], []
            for _ in range(args.repeat):  # alternate, so drift hits both sides alike
                raw_runs.append(sluice_perf(args.sluice, raw, 32, args.seconds, args.core))
                lvol_runs.append(sluice_perf(args.sluice, vol, 32, args.seconds, args.core))
            raw = {k: med(raw_runs, k) for k in raw_runs[0]}
            lv = {k: med(lvol_runs, k) for k in lvol_runs[0]}
            result["data"].append({"device": label, "raw": raw, "lvol": lv, "iops_ratio": lv["iops"] / raw["iops"],
                                   "cpu_ratio": lv["cpu_ns_per_io"] / raw["cpu_ns_per_io"]})
    finally:
        for f in files:
            f.unlink(missing_ok=True)

    print(f"Blobstore metadata (median of {args.repeat} runs of 1000 ops)")
    print(f"{'device':<8}{'create+sync/s':>15}{'resize+sync/s':>15}{'xattr+sync/s':>14}{'thin 1st write us':>19}{'alloc write us':>16}")
    for r in result["metadata"]:
        print(f"{r['device']:<8}{r['create_sync_per_s']:>15,.0f}{r['resize_sync_per_s']:>15,.0f}{r['xattr_sync_per_s']:>14,.0f}"
              f"{r['thin_first_write_us_p50']:>19.1f}{r['allocated_write_us_p50']:>16.1f}")
    print()
    print(f"lvol vs raw device: 4 KiB random read, QD32, one core, median of {args.repeat} x {args.seconds}s")
    print(f"{'device':<13}{'raw IOPS':>11}{'lvol IOPS':>11}{'lvol/raw':>9}{'raw ns/IO':>11}{'lvol ns/IO':>11}")
    for r in result["data"]:
        print(f"{r['device']:<13}{r['raw']['iops']:>11,.0f}{r['lvol']['iops']:>11,.0f}{r['iops_ratio']:>9.3f}"
              f"{r['raw']['cpu_ns_per_io']:>11.0f}{r['lvol']['cpu_ns_per_io']:>11.0f}")
    (RESULTS / "blobstore.json").write_text(json.dumps(result, indent=1))
    plot(result)


def plot(result):
    plt = pyplot()
    if not plt:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [r["device"] for r in result["data"]]
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], [r["raw"]["iops"] / 1e3 for r in result["data"]], 0.4, label="raw device")
    ax.bar([i + 0.2 for i in x], [r["lvol"]["iops"] / 1e3 for r in result["data"]], 0.4, label="lvol")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels)
    ax.set_ylabel("KIOPS (4 KiB randread, QD32, 1 core)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "blobstore.png", dpi=110)


if __name__ == "__main__":
    main()
