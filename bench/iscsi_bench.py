#!/usr/bin/python3
"""iSCSI on loopback: Sluice's target (`sluice serve -m 0`, a RAM device of 4 KiB blocks) against
Debian's tgt (tgtd, a file of the same size on /dev/shm: the page cache is its RAM device),
each pinned to core 0, driven in turn by libiscsi's iscsi-perf on core 1.

Cells: 4 KiB random read at QD1 and QD32, one session. Per cell: IOPS (iscsi-perf's average
over the run), the target's CPU per I/O (/proc/PID/stat of the target process, all its threads,
before and after, over IOPS x seconds) and Sluice's ratio to tgt. Medians of --repeat runs,
the targets taking turns. The goals this is held to: at QD32 at least 137.5K IOPS (what SPDK's
iscsi_tgt reached with iscsi-perf on this kind of machine) and at least 3x tgt. Prints a
markdown table; writes bench/results/iscsi.json.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # noqa: E402
    RESULTS, ROOT, cpu_seconds, die_with_parent, free_port,
    machine_before_run, progress, scratch_file, stop_process, write_results)

QDS = [1, 32]
TARGETS = ["sluice", "tgt"]
TARGET_CORE, INITIATOR_CORE = 0, 1
NODE = "iqn.2026-12.io.sluice:bench"


def wait_for_portal(url, proc, log_path, what):
    deadline = time.monotonic() + 20
    while subprocess.run(["iscsi-ls", url], capture_output=True, timeout=10).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up: {Path(log_path).read_text()[-800:]}")
        time.sleep(0.1)


class SluiceTarget:
    """`sluice serve -m 0`: Malloc0 (4 KiB blocks) at LUN 0 of NODE on 127.0.0.1."""

    def __init__(self, args, tmp):
        port = free_port()
        cfg = {"subsystems": [
            {"subsystem": "bdev", "config": [{"method": "bdev_malloc_create", "params": {
                "name": "Malloc0", "num_blocks": (args.size_mb << 20) // 4096, "block_size": 4096}}]},
            {"subsystem": "iscsi", "config": [
                {"method": "iscsi_create_portal_group", "params": {"tag": 1, "portals": [
                    {"host": "127.0.0.1", "port": str(port)}]}},
                {"method": "iscsi_create_initiator_group", "params": {
                    "tag": 1, "initiators": ["ANY"], "netmasks": ["127.0.0.1/32"]}},
                {"method": "iscsi_create_target_node", "params": {
                    "name": NODE, "luns": [{"bdev_name": "Malloc0", "lun_id": 0}],
                    "pg_ig_maps": [{"pg_tag": 1, "ig_tag": 1}], "queue_depth": 64}}]}]}
        (tmp / "serve.json").write_text(json.dumps(cfg))
        self.log = open(tmp / "serve.log", "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(TARGET_CORE), args.sluice, "serve", "-m", str(TARGET_CORE), "-r",
             str(tmp / "rpc.sock"), "-c", str(tmp / "serve.json")],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        self.url = f"iscsi://127.0.0.1:{port}/{NODE}/0"
        wait_for_portal(f"iscsi://127.0.0.1:{port}", self.proc, tmp / "serve.log", "sluice serve")

    def close(self):
        stop_process(self.proc, 20)
        self.log.close()


class TgtTarget:
    """tgtd in the foreground on its own control port: NODE, LUN 1 over a /dev/shm file."""

    def __init__(self, args, tmp):
        port = free_port()
        # The control "port" names tgtd's management socket (/var/run/tgtd/socket.N); tgtd takes
        # only small numbers, and another tgtd (the system's, on 0) may own one.
        n = 1000 + os.getpid() % 20000
        while Path(f"/var/run/tgtd/socket.{n}").exists():
            n += 1
        self.control = str(n)
        self.backing = scratch_file("/dev/shm", args.size_mb, prefix="sluice-iscsi-bench-")
        self.log = open(tmp / "tgtd.log", "w")
        self.proc = None
        try:
            self.start(port, tmp)
        except BaseException:
            self.close()
            raise

    def start(self, port, tmp):
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(TARGET_CORE), "tgtd", "-f", "-C", self.control, "--iscsi",
             f"portal=127.0.0.1:{port}"],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 20
        while self.tgtadm("--op", "show", "--mode", "target", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tgtd did not come up: {(tmp / 'tgtd.log').read_text()[-800:]}")
            time.sleep(0.1)
        self.tgtadm("--op", "new", "--mode", "target", "--tid", "1", "-T", NODE)
        self.tgtadm("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b", str(self.backing),
                    "--blocksize", "4096")
        self.tgtadm("--op", "bind", "--mode", "target", "--tid", "1", "-I", "127.0.0.1")
        self.url = f"iscsi://127.0.0.1:{port}/{NODE}/1"
        wait_for_portal(f"iscsi://127.0.0.1:{port}", self.proc, tmp / "tgtd.log", "tgtd")

    def tgtadm(self, *args, check=True):
        p = subprocess.run(["tgtadm", "-C", self.control, "--lld", "iscsi", *args], capture_output=True, text=True,
                           timeout=20)
        if check and p.returncode != 0:
            raise RuntimeError(f"tgtadm {' '.join(args)}: {p.stderr.strip() or p.stdout.strip()}")
        return p

    def close(self):
        if self.proc is not None:
            stop_process(self.proc, 20)
        self.log.close()
        self.backing.unlink(missing_ok=True)


def perf(target, args, qd):
    before = cpu_seconds(target.pid)
    p = subprocess.run(["taskset", "-c", str(INITIATOR_CORE), "iscsi-perf", "-r", "-b", "1", "-m", str(qd), "-t",
                        str(args.seconds), target.url], capture_output=True, text=True, timeout=args.seconds + 60)
    after = cpu_seconds(target.pid)
    found = re.findall(r"iops average (\d+)", p.stdout)
    if p.returncode != 0 or not found:
        raise RuntimeError(f"iscsi-perf QD{qd} on {target.url}: {(p.stderr or p.stdout).strip()[-500:]}")
    iops = float(found[-1])
    return {"iops": iops, "target_cpu_ns_per_io": (after - before) * 1e9 / max(1.0, iops * args.seconds)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=str(ROOT / "build/release/apps/sluice/sluice"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--out", default=str(RESULTS / "iscsi.json"))
    a = ap.parse_args()
    packages = {"fio": "fio", "iscsi-perf": "libiscsi-bin", "iscsi-ls": "libiscsi-bin", "tgtd": "tgt", "tgtadm": "tgt",
                "taskset": "util-linux"}
    for tool, package in packages.items():
        if not shutil.which(tool):
            sys.exit(f"iscsi_bench: {tool} is not installed (apt-get install {package})")
    if os.cpu_count() < 2:
        sys.exit("iscsi_bench: needs 2 cores (target on core 0, initiator on core 1)")
    busy_before, load_before = machine_before_run()

    runs = {}  # (target, qd) -> [run]
    with tempfile.TemporaryDirectory(prefix="sluice-iscsi-bench-") as d:
        tmp = Path(d)
        for r in range(a.repeat):
            for name in TARGETS:
                progress(f"repeat {r + 1}/{a.repeat}: {name}")
                target = SluiceTarget(a, tmp) if name == "sluice" else TgtTarget(a, tmp)
                try:
                    for qd in QDS:
                        runs.setdefault((name, qd), []).append(perf(target, a, qd))
                finally:
                    target.close()
    load_after = os.getloadavg()

    keys = ("iops", "target_cpu_ns_per_io")
    cells = [{"target": t, "qd": qd, **{k: statistics.median(x[k] for x in rs) for k in keys}, "runs": rs}
             for (t, qd), rs in runs.items()]
    by = {(c["target"], c["qd"]): c for c in cells}
    print(f"\n{a.repeat} x {a.seconds} s per cell, medians; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; machine {busy_before:.0%} busy just before\n")
    print("| 4 KiB randread | Sluice IOPS | tgt IOPS | Sluice / tgt | Sluice CPU ns/I/O | tgt CPU ns/I/O |")
    print("|---|---|---|---|---|---|")
    for qd in QDS:
        s, t = by[("sluice", qd)], by[("tgt", qd)]
        print(f"| QD{qd} | {s['iops'] / 1000:.1f}K | {t['iops'] / 1000:.1f}K | {s['iops'] / t['iops']:.2f}x | "
              f"{s['target_cpu_ns_per_io']:,.0f} | {t['target_cpu_ns_per_io']:,.0f} |")
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "repeat": a.repeat, "seconds": a.seconds,
           "size_mb": a.size_mb, "load_before": load_before, "busy_before": busy_before, "load_after": load_after,
           "target_core": TARGET_CORE, "initiator_core": INITIATOR_CORE, "cells": cells}
    write_results(a.out, out)


if __name__ == "__main__":
    main()
