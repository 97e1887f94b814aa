#!/usr/bin/python3
"""NVMe over TCP on loopback, both ends Sluice's: `sluice serve` on core 0 with a RAM device
exported over NVMe/TCP, and Sluice's initiator (`sluice perf -T nvme-tcp:...`) on core 1; the
same device exported over NBD in the same daemon, driven by fio's nbd engine on core 1, to
show what each protocol costs.

Cells: 4 KiB random read and random write, QD1 and QD32, one initiator thread and one
connection (queue). Per cell: IOPS, p50 and p99 completion latency, the target's CPU per I/O
(/proc/PID/stat of the daemon, before and after) and the initiator's (sluice perf's own
figure; for fio, its usr+sys share of the run over its I/O count). Medians of --repeat runs,
the protocols taking turns. The goal this is held to: at QD32 at least 534K IOPS and at QD1
a p50 of at most 12 us (what SPDK's nvmf_tgt with spdk_nvme_perf reached on this kind of
machine). Prints a markdown table; writes bench/results/nvmf.json.
"""
import argparse
import json
import os
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
    machine_before_run, progress, stop_process, write_results)
from nbd_bench import fio  # noqa: E402

CELLS = [("randread", 1), ("randread", 32), ("randwrite", 1), ("randwrite", 32)]
PROTOCOLS = ["nvme-tcp", "nbd"]
TARGET_CORE, INITIATOR_CORE = 0, 1
NQN = "nqn.2026-12.io.sluice:bench"


class Daemon:
    """`sluice serve -m 0`: Malloc0 (4 KiB blocks) over NVMe/TCP and NBD on 127.0.0.1."""

    def __init__(self, args, tmp):
        self.nvme_port, self.nbd_port = free_port(), free_port()
        blocks = (args.size_mb << 20) // 4096
        listen = {"trtype": "TCP", "adrfam": "IPv4", "traddr": "127.0.0.1", "trsvcid": str(self.nvme_port)}
        cfg = {"subsystems": [
            {"subsystem": "bdev", "config": [{"method": "bdev_malloc_create", "params": {
                "name": "Malloc0", "num_blocks": blocks, "block_size": 4096}}]},
            {"subsystem": "nvmf", "config": [
                {"method": "nvmf_create_transport", "params": {"trtype": "TCP"}},
                {"method": "nvmf_create_subsystem", "params": {"nqn": NQN, "allow_any_host": True}},
                {"method": "nvmf_subsystem_add_ns", "params": {"nqn": NQN, "namespace": {"bdev_name": "Malloc0"}}},
                {"method": "nvmf_subsystem_add_listener", "params": {"nqn": NQN, "listen_address": listen}}]},
            {"subsystem": "nbd", "config": [
                {"method": "nbd_export_add", "params": {"name": "disk", "bdev_name": "Malloc0"}},
                {"method": "nbd_server_start", "params": {"address": "127.0.0.1", "port": self.nbd_port}}]}]}
        (tmp / "serve.json").write_text(json.dumps(cfg))
        self.log = open(tmp / "serve.log", "w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(TARGET_CORE), args.sluice, "serve", "-m", str(TARGET_CORE), "-r",
             str(tmp / "rpc.sock"), "-c", str(tmp / "serve.json")],
            stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.pid = self.proc.pid
        self.spec = f"nvme-tcp:127.0.0.1:{self.nvme_port}/{NQN}/1"
        self.nbd_uri = f"nbd://127.0.0.1:{self.nbd_port}/disk"
        deadline = time.monotonic() + 20
        while subprocess.run(["nbdinfo", "--size", self.nbd_uri], capture_output=True).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sluice serve did not come up: {(tmp / 'serve.log').read_text()[-800:]}")
            time.sleep(0.1)

    def close(self):
        stop_process(self.proc, 20)
        self.log.close()


def nvme_tcp(daemon, args, rw, qd):
    before = cpu_seconds(daemon.pid)
    p = subprocess.run([args.sluice, "perf", "-T", daemon.spec, "-c", str(INITIATOR_CORE), "-w", rw, "-o", "4k",
                        "-q", str(qd), "-t", str(args.seconds), "--json"],
                       capture_output=True, text=True, timeout=args.seconds + 60)
    after = cpu_seconds(daemon.pid)
    if p.returncode != 0:
        raise RuntimeError(f"sluice perf {rw} QD{qd}: {p.stderr.strip()[-500:]}")
    t = json.loads(p.stdout)["total"]
    return {"iops": t["iops"], "p50_us": t["lat_us"]["p50"], "p99_us": t["lat_us"]["p99"],
            "target_cpu_ns_per_io": (after - before) * 1e9 / max(1, t["ios"]),
            "initiator_cpu_ns_per_io": t["cpu_ns_per_io"]}


def nbd(daemon, args, rw, qd):
    before = cpu_seconds(daemon.pid)
    job = fio(daemon.nbd_uri, rw, qd, args.seconds, args.size_mb)
    after = cpu_seconds(daemon.pid)
    side = job["read" if rw == "randread" else "write"]
    ios = max(1, side["total_ios"])
    pct = side["clat_ns"]["percentile"]
    client_s = (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] / 1000
    return {"iops": side["iops"], "p50_us": pct["50.000000"] / 1000, "p99_us": pct["99.000000"] / 1000,
            "target_cpu_ns_per_io": (after - before) * 1e9 / ios, "initiator_cpu_ns_per_io": client_s * 1e9 / ios}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=str(ROOT / "build/release/apps/sluice/sluice"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--out", default=str(RESULTS / "nvmf.json"))
    a = ap.parse_args()
    for tool in ["fio", "nbdinfo", "taskset"]:
        if not shutil.which(tool):
            sys.exit(f"nvmf_bench: {tool} is not installed (scripts/deps.sh)")
    if os.cpu_count() < 2:
        sys.exit("nvmf_bench: needs 2 cores (target on core 0, initiator on core 1)")
    busy_before, load_before = machine_before_run()

    runs = {}  # (protocol, rw, qd) -> [run]
    with tempfile.TemporaryDirectory(prefix="sluice-nvmf-bench-") as d:
        tmp = Path(d)
        for r in range(a.repeat):
            progress(f"repeat {r + 1}/{a.repeat}")
            daemon = Daemon(a, tmp)
            try:
                fio(daemon.nbd_uri, "write", 32, 0, a.size_mb, ["--bs=1M"])  # real data: reads never hit holes
                for rw, qd in CELLS:
                    for proto in PROTOCOLS:
                        fn = nvme_tcp if proto == "nvme-tcp" else nbd
                        runs.setdefault((proto, rw, qd), []).append(fn(daemon, a, rw, qd))
            finally:
                daemon.close()
    load_after = os.getloadavg()

    keys = ("iops", "p50_us", "p99_us", "target_cpu_ns_per_io", "initiator_cpu_ns_per_io")
    cells = [{"protocol": p, "rw": rw, "qd": qd, **{k: statistics.median(x[k] for x in rs) for k in keys}, "runs": rs}
             for (p, rw, qd), rs in runs.items()]
    print(f"\n{a.repeat} x {a.seconds:g} s per cell, medians; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; machine {busy_before:.0%} busy just before\n")
    print("| workload | QD | protocol | IOPS | p50 us | p99 us | target CPU ns/I/O | initiator CPU ns/I/O |")
    print("|---|---|---|---|---|---|---|---|")
    for rw, qd in CELLS:
        for c in cells:
            if (c["rw"], c["qd"]) == (rw, qd):
                print(f"| {rw} | {qd} | {c['protocol']} | {c['iops'] / 1000:.1f}K | {c['p50_us']:.1f} | {c['p99_us']:.0f} | "
                      f"{c['target_cpu_ns_per_io']:,.0f} | {c['initiator_cpu_ns_per_io']:,.0f} |")
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "repeat": a.repeat, "seconds": a.seconds,
           "size_mb": a.size_mb, "load_before": load_before, "busy_before": busy_before, "load_after": load_after,
           "target_core": TARGET_CORE, "initiator_core": INITIATOR_CORE, "cells": cells}
    write_results(a.out, out)


if __name__ == "__main__":
    main()
