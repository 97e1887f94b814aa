#!/usr/bin/python3
"""Sluice `sluice perf` against fio, side by side in one run on the same targets.

4 KiB random reads on one core at QD1 and QD32; every cell is the median of --repeat runs.
Pairs:
  null     sluice null bdev            vs fio ioengine=null
  malloc   sluice malloc bdev          (no fio peer; reported absolute)
  shm-loop sluice uring on a loop device over a /dev/shm file vs fio io_uring and libaio
  rootfs   sluice uring on a root-filesystem file, O_DIRECT   vs fio io_uring
Prints a table with ratios Sluice/peer, writes bench/results/perf_vs_fio.json and a PNG.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import RESULTS, ROOT, LoopDevice, median_of, progress, pyplot, run, scratch_file, sluice_perf  # noqa: E402


def fio(engine, filename, qd, seconds, core, size="1G"):
    cmd = ["fio", "--name=bench", f"--ioengine={engine}", "--rw=randread", "--bs=4k", f"--iodepth={qd}",
           "--time_based", f"--runtime={seconds}", f"--cpus_allowed={core}", "--numjobs=1",
           "--output-format=json", "--lat_percentiles=1", "--norandommap", "--randrepeat=0"]
    if engine == "null":
        cmd += [f"--size={size}"]
    else:
        cmd += [f"--filename={filename}", "--direct=1"]
        if engine == "io_uring":
            # Same batching freedom Sluice has: submit and reap in batches; fixed buffers/files.
            cmd += ["--fixedbufs=1", "--registerfiles=1", "--iodepth_batch_submit=32",
                    "--iodepth_batch_complete_max=32"] if qd > 1 else ["--fixedbufs=1", "--registerfiles=1"]
        if engine == "libaio" and qd > 1:
            cmd += ["--iodepth_batch_submit=32", "--iodepth_batch_complete_max=32"]
    job = json.loads(run(cmd).stdout)["jobs"][0]
    rd = job["read"]
    ios = rd["total_ios"]
    runtime_s = job["job_runtime"] / 1000.0
    cpu_pct = job["usr_cpu"] + job["sys_cpu"]
    return {"iops": rd["iops"], "p99_us": rd["lat_ns"]["percentile"]["99.000000"] / 1000.0,
            "cpu_ns_per_io": cpu_pct / 100.0 * runtime_s * 1e9 / max(ios, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=str(ROOT / "build/release/apps/sluice/sluice"))
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--skip", action="append", default=[], help="skip a pair: null, malloc, shm-loop, rootfs")
    args = ap.parse_args()
    if not os.access(args.sluice, os.X_OK):
        sys.exit(f"bench: {args.sluice} not found; build first (scripts/build.sh build/release)")

    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []  # (pair, qd, sluice-label, peer-label, sluice result, peer result or None)
    qds = [1, 32]
    s, r, c = args.seconds, args.repeat, args.core

    if "null" not in args.skip:
        for qd in qds:
            progress(f"null QD{qd}")
            a = median_of(lambda: sluice_perf(args.sluice, "null:1G", qd, s, c), r)
            b = median_of(lambda: fio("null", None, qd, s, c), r)
            rows.append(("null", qd, "sluice null", "fio null", a, b))
    if "malloc" not in args.skip:
        for qd in qds:
            progress(f"malloc QD{qd}")
            a = median_of(lambda: sluice_perf(args.sluice, "malloc:1G", qd, s, c), r)
            rows.append(("malloc", qd, "sluice malloc", "-", a, None))

    tmp = []
    loop = None
    try:
        if "shm-loop" not in args.skip:
            shm = scratch_file("/dev/shm", args.size_mb)
            tmp.append(shm)
            try:
                loop = LoopDevice(shm)
            except subprocess.CalledProcessError as e:
                progress(f"no loop device ({e.stderr.strip()}); skipping shm-loop")
            if loop:
                for qd in qds:
                    progress(f"shm-loop QD{qd}")
                    a = median_of(lambda: sluice_perf(args.sluice, f"uring:{loop.dev}", qd, s, c), r)
                    b = median_of(lambda: fio("io_uring", loop.dev, qd, s, c), r)
                    rows.append(("shm-loop", qd, "sluice uring", "fio io_uring", a, b))
                    b2 = median_of(lambda: fio("libaio", loop.dev, qd, s, c), r)
                    rows.append(("shm-loop", qd, "sluice uring", "fio libaio", a, b2))
        if "rootfs" not in args.skip:
            RESULTS.mkdir(parents=True, exist_ok=True)
            f = scratch_file(RESULTS, args.size_mb)
            tmp.append(f)
            for qd in qds:
                progress(f"rootfs QD{qd}")
                a = median_of(lambda: sluice_perf(args.sluice, f"uring:{f}", qd, s, c), r)
                b = median_of(lambda: fio("io_uring", str(f), qd, s, c), r)
                rows.append(("rootfs", qd, "sluice uring", "fio io_uring", a, b))
    finally:
        if loop:
            loop.close()
        for p in tmp:
            p.unlink(missing_ok=True)

    report(rows, args)


def fmt_iops(v):
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}K"


def report(rows, args):
    hdr = f"{'pair':<9}{'QD':>3}  {'sluice':<13}{'IOPS':>9}{'p99us':>8}{'ns/IO':>8}  {'peer':<12}{'IOPS':>9}{'p99us':>8}{'ns/IO':>8}  {'IOPS x':>6}{'CPU x':>6}"
    print(f"4 KiB random read, one core, median of {args.repeat} x {args.seconds}s runs")
    print(hdr)
    print("-" * len(hdr))
    out = []
    for pair, qd, sl, pl, a, b in rows:
        line = f"{pair:<9}{qd:>3}  {sl:<13}{fmt_iops(a['iops']):>9}{a['p99_us']:>8.1f}{a['cpu_ns_per_io']:>8.0f}  "
        rec = {"pair": pair, "qd": qd, "sluice": sl, "sluice_result": a, "peer": pl, "peer_result": b}
        if b:
            ri = a["iops"] / b["iops"] if b["iops"] else 0
            rc = a["cpu_ns_per_io"] / b["cpu_ns_per_io"] if b["cpu_ns_per_io"] else 0
            line += f"{pl:<12}{fmt_iops(b['iops']):>9}{b['p99_us']:>8.1f}{b['cpu_ns_per_io']:>8.0f}  {ri:>6.2f}{rc:>6.2f}"
            rec |= {"iops_ratio": ri, "cpu_ratio": rc}
        print(line)
        out.append(rec)
    print("IOPS x = Sluice IOPS / peer IOPS (higher is better); CPU x = Sluice CPU ns per I/O / peer's (lower is better)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": args.seconds, "repeat": args.repeat,
            "core": args.core, "nproc": os.cpu_count(), "rows": out}
    (RESULTS / "perf_vs_fio.json").write_text(json.dumps(meta, indent=1))
    plot(out)


def plot(rows):
    plt = pyplot()
    if not plt:
        return
    labels, sl, pe = [], [], []
    for r in rows:
        labels.append(f"{r['pair']}\nQD{r['qd']}\nvs {r['peer']}")
        sl.append(r["sluice_result"]["iops"] / 1e6)
        pe.append(r["peer_result"]["iops"] / 1e6 if r["peer_result"] else 0)
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 1.1), 4.5))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], sl, 0.4, label="Sluice")
    ax.bar([i + 0.2 for i in x], pe, 0.4, label="peer (fio)")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("MIOPS (4 KiB randread, 1 core)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "perf_vs_fio.png", dpi=110)


if __name__ == "__main__":
    main()
