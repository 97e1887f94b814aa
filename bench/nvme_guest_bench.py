#!/usr/bin/python3
"""Sluice's userspace NVMe driver against the guest kernel's nvme driver, in a QEMU guest.

Boots the TCG guest of scripts/guest/ (QEMU's NVMe controller behind an emulated intel-iommu)
once and runs bench/nvme_guest_bench_inside.sh in it: 4 KiB random reads on one core at QD1 and
QD32, every cell the median of --repeat runs:
  fio-io_uring, fio-libaio   fio through the guest kernel's nvme driver (/dev/nvme0n1)
  sluice-uring               sluice perf -T uring:/dev/nvme0n1 (Sluice over the same kernel path)
  sluice-nvme-vfio           sluice perf -T nvme:BDF, controller bound to vfio-pci
  sluice-nvme-perf-vfio      sluice nvme perf BDF (when that subcommand exists)
  sluice-nvme-uio            sluice perf -T nvme:BDF, controller bound to uio_pci_generic
  sluice-nvme-perf-uio       sluice nvme perf BDF, the same
The driver rows appear once this sluice has the `nvme` subcommand. Prints a table with ratios
against fio io_uring and writes bench/results/nvme_guest.json.

Under TCG every number is an emulation number: the controller is QEMU code on the same two host
cores as the guest CPUs, so the absolute rates say little about hardware; the CPU ns per I/O
inside the guest (what each path costs the guest core) is the comparable figure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import RESULTS, ROOT, median_runs, progress  # noqa: E402

GUEST = ROOT / "scripts" / "guest"
ORDER = ["fio-io_uring", "fio-libaio", "sluice-uring", "sluice-nvme-vfio", "sluice-nvme-perf-vfio", "sluice-nvme-uio",
         "sluice-nvme-perf-uio"]


def metrics(runner, d):
    """IOPS, p99 and guest CPU ns per I/O from a fio or Sluice JSON report."""
    if runner.startswith("fio"):
        job = d["jobs"][0]
        if job["error"]:
            raise ValueError(f"fio error {job['error']}")
        rd = job["read"]
        runtime_s = job["job_runtime"] / 1000.0
        cpu = (job["usr_cpu"] + job["sys_cpu"]) / 100.0 * runtime_s * 1e9 / max(rd["total_ios"], 1)
        return {"iops": rd["iops"], "p99_us": rd["clat_ns"]["percentile"]["99.000000"] / 1000.0, "cpu_ns_per_io": cpu}
    t = d.get("total", d)  # sluice perf's schema; `sluice nvme perf` reports flat
    if t["errors"]:
        raise ValueError(f"{t['errors']} I/O errors")
    lat = t.get("lat_us") or t.get("latency_us") or {}
    return {"iops": t["iops"], "p99_us": lat.get("p99", 0.0), "cpu_ns_per_io": t["cpu_ns_per_io"]}


def parse_console(text):
    """{qd: {runner: [metrics per round]}} from the GUEST-JSON lines, and the failure lines."""
    cells, failures = {}, []
    for line in text.replace("\r", "").splitlines():
        if line.startswith("FAIL "):
            failures.append(line)
        at = line.find("GUEST-JSON ")
        if at < 0:
            continue
        _, name, body = line[at:].split(" ", 2)
        qd, runner, _round = name.split("/")
        try:
            m = metrics(runner, json.loads(body))
        except (ValueError, KeyError, IndexError) as e:
            failures.append(f"unreadable report {name}: {e!r}")
            continue
        cells.setdefault(int(qd[2:]), {}).setdefault(runner, []).append(m)
    return cells, failures


def fmt_iops(v):
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.1f}K"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=str(ROOT / "build/release/apps/sluice/sluice"))
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--qd", type=int, action="append", help="queue depths (default 1 and 32)")
    ap.add_argument("--smp", type=int, default=2, help="guest CPUs (runs use CPU 0)")
    ap.add_argument("--log", help="keep the guest console log here")
    ap.add_argument("--out", default=str(RESULTS / "nvme_guest.json"))
    args = ap.parse_args()
    qds = args.qd or [1, 32]
    if not os.access(args.sluice, os.X_OK):
        sys.exit(f"bench: {args.sluice} not found; build first (scripts/build.sh build/release -- sluice)")

    k = subprocess.run([str(GUEST / "fetch-kernel.sh")], capture_output=True, text=True)
    if k.returncode != 0:
        sys.exit(f"bench: fetch-kernel.sh failed ({k.returncode}): {k.stderr.strip()}")
    kdir = k.stdout.strip()
    # 7 runners at most per QD and round, plus boot, fill and rebinding.
    timeout = int(90 + len(qds) * args.repeat * 7 * (args.seconds + 4))
    with tempfile.TemporaryDirectory(prefix="sluice-nvme-bench-") as tmp:
        initrd = Path(tmp) / "initrd.cpio"
        log = Path(args.log) if args.log else Path(tmp) / "console.log"
        subprocess.run([str(GUEST / "make-initramfs.sh"), "--kernel-dir", kdir, "--out", str(initrd),
                        "--script", str(ROOT / "bench" / "nvme_guest_bench_inside.sh"),
                        "--module", "nvme", "--module", "vfio-pci", "--module", "vfio_iommu_type1",
                        "--module", "uio_pci_generic", "--bin", args.sluice, "--bin", "/usr/bin/fio",
                        "--env", f"BENCH_T={args.seconds:g}", "--env", f"BENCH_REPEAT={args.repeat}",
                        "--env", "BENCH_QDS=" + " ".join(map(str, qds))], check=True)
        progress(f"guest run: {len(qds)} queue depths x {args.repeat} round(s) x {args.seconds:g} s, timeout {timeout} s")
        started = time.time()
        g = subprocess.run([str(GUEST / "run-guest.sh"), "--kernel", f"{kdir}/vmlinux", "--initrd", str(initrd),
                            "--log", str(log), "--timeout", str(timeout), "--smp", str(args.smp),
                            "--ns", "256M", "--ns", "16M", "--quiet"])
        wall = time.time() - started
        cells, failures = parse_console(log.read_text(errors="replace"))
    for f in failures:
        print(f, file=sys.stderr)
    if g.returncode != 0 or not cells:
        sys.exit(f"bench: the guest run failed (exit {g.returncode}); rerun with --log FILE to see its console")

    report(cells, args, kdir, wall)


def report(cells, args, kdir, wall):
    print(f"4 KiB random read, guest CPU 0, TCG guest ({args.smp} vCPUs), median of {args.repeat} x {args.seconds:g} s runs")
    hdr = f"{'QD':>3}  {'runner':<22}{'IOPS':>9}{'p99 us':>9}{'CPU ns/IO':>11}  {'IOPS x':>7}{'CPU x':>7}"
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for qd in sorted(cells):
        by = {r: median_runs(v) for r, v in cells[qd].items()}
        base = by.get("fio-io_uring")
        for runner in sorted(by, key=lambda r: ORDER.index(r) if r in ORDER else len(ORDER)):
            m = by[runner]
            rec = {"qd": qd, "runner": runner} | m
            line = f"{qd:>3}  {runner:<22}{fmt_iops(m['iops']):>9}{m['p99_us']:>9.1f}{m['cpu_ns_per_io']:>11.0f}"
            if base and runner != "fio-io_uring" and base["iops"] and base["cpu_ns_per_io"]:
                rec["iops_vs_fio_io_uring"] = m["iops"] / base["iops"]
                rec["cpu_vs_fio_io_uring"] = m["cpu_ns_per_io"] / base["cpu_ns_per_io"]
                line += f"  {rec['iops_vs_fio_io_uring']:>7.2f}{rec['cpu_vs_fio_io_uring']:>7.2f}"
            print(line)
            rows.append(rec)
    print("IOPS x / CPU x: against fio io_uring through the guest kernel at the same QD "
          "(IOPS higher is better, CPU lower is better)")
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    out = {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": args.seconds, "repeat": args.repeat,
           "guest": {"kernel": Path(kdir).name, "qemu": qemu, "accel": "tcg", "smp": args.smp, "cpu": 0},
           "host_nproc": os.cpu_count(), "guest_wall_s": round(wall, 1), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    progress(f"wrote {args.out}")


if __name__ == "__main__":
    main()
