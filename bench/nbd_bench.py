#!/usr/bin/python3
"""Serving a RAM device over NBD: `sluice serve` against nbdkit's memory plugin and
qemu-storage-daemon, measured in the same run with the same client, fio's nbd engine (libnbd).

Cells: 4 KiB random read and random write, QD1 and QD32, one fio job (one connection), over a
Unix socket and over TCP 127.0.0.1. fio is pinned to core 1, every server to core 0, one
server running at a time. Servers:
  sluice  `sluice serve -m 0`, a malloc bdev exported (config file)
  nbdkit  `nbdkit --exit-with-parent -f memory SIZE` (sparse RAM, its default 16 threads)
  qsd     `qemu-storage-daemon`, a file in /dev/shm (driver=file, aio=io_uring), NBD export
Each server is started, its whole export written once (so reads hit real data), measured in
every cell, stopped; a repeat does all of that again for every server, so the servers take
turns through the run. Per cell: IOPS and clat p99 from fio, and the server's CPU per I/O
from /proc/PID/stat (utime + stime of every thread, before and after the run, over fio's
I/O count). Medians of --repeat runs.
Prints a markdown table with the ratios Sluice/nbdkit and Sluice/qsd, writes
bench/results/nbd.json.
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

SERVERS = ["sluice", "nbdkit", "qsd"]
CELLS = [("randread", 1), ("randread", 32), ("randwrite", 1), ("randwrite", 32)]
TRANSPORTS = ["unix", "tcp"]
SERVER_CORE, FIO_CORE = 0, 1

class Server:
    """One NBD server on core 0, serving export "disk" of args.size_mb MiB."""

    def __init__(self, kind, transport, args, tmp):
        self.kind, self.transport, self.args, self.tmp = kind, transport, args, tmp
        size = args.size_mb << 20
        sock = tmp / f"{kind}-{transport}-{time.monotonic_ns()}.sock"  # nbdkit leaves its socket
        port = free_port() if transport == "tcp" else None
        self.uri = f"nbd+unix:///disk?socket={sock}" if port is None else f"nbd://127.0.0.1:{port}/disk"
        self.shm = None
        if kind == "sluice":
            listen = {"socket": str(sock)} if port is None else {"address": "127.0.0.1", "port": port}
            cfg = {"subsystems": [
                {"subsystem": "bdev", "config": [{"method": "bdev_malloc_create", "params": {
                    "name": "Malloc0", "num_blocks": size // 4096, "block_size": 4096}}]},
                {"subsystem": "nbd", "config": [
                    {"method": "nbd_export_add", "params": {"name": "disk", "bdev_name": "Malloc0"}},
                    {"method": "nbd_server_start", "params": listen}]}]}
            (tmp / "sluice.json").write_text(json.dumps(cfg))
            cmd = [args.sluice, "serve", "-m", str(SERVER_CORE), "-r", str(tmp / "rpc.sock"), "-c", str(tmp / "sluice.json")]
        elif kind == "nbdkit":
            where = ["-U", str(sock)] if port is None else ["-i", "127.0.0.1", "-p", str(port)]
            cmd = ["nbdkit", "--exit-with-parent", "-f", "-e", "disk", *where, "memory", f"{args.size_mb}M"]
        else:
            self.shm = Path(tempfile.mkstemp(prefix="sluice-nbd-bench-", suffix=".img", dir="/dev/shm")[1])
            os.truncate(self.shm, size)
            addr = f"addr.type=unix,addr.path={sock}" if port is None else \
                f"addr.type=inet,addr.host=127.0.0.1,addr.port={port}"
            cmd = ["qemu-storage-daemon",
                   "--blockdev", f"driver=file,filename={self.shm},aio=io_uring,node-name=f",
                   "--nbd-server", addr,
                   "--export", "type=nbd,id=e,node-name=f,name=disk,writable=on"]
        self.log = open(tmp / f"{kind}.log", "w")
        self.proc = subprocess.Popen(["taskset", "-c", str(SERVER_CORE), *cmd], stdout=self.log,
                                     stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.pid = self.proc.pid  # taskset execs the server: same pid
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{kind} exited {self.proc.returncode}: {(tmp / f'{kind}.log').read_text()[-800:]}")
            p = subprocess.run(["nbdinfo", "--size", self.uri], capture_output=True, text=True, timeout=10)
            if p.returncode == 0:
                if int(p.stdout) != size:
                    raise RuntimeError(f"{kind}: export size {p.stdout.strip()}, want {size}")
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not come up on {self.uri}: {p.stderr.strip()}")
            time.sleep(0.1)

    def close(self):
        stop_process(self.proc, 10)
        self.log.close()
        if self.shm:
            self.shm.unlink(missing_ok=True)


def fio(uri, rw, qd, seconds, size_mb, extra=()):
    cmd = ["taskset", "-c", str(FIO_CORE), "fio", "--name=nbd", "--ioengine=nbd", f"--uri={uri}", f"--rw={rw}",
           "--bs=4k", f"--iodepth={qd}", f"--size={size_mb}M", "--output-format=json", "--randrepeat=0",
           "--norandommap", *extra]
    if seconds:
        cmd += ["--time_based", f"--runtime={seconds}"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=(seconds or 60) + 60)
    # The nbd engine prints "fio: connected to NBD server" on stdout before the JSON.
    if p.returncode != 0 or "{" not in p.stdout:
        raise RuntimeError(f"fio {rw} QD{qd} on {uri} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    job = json.loads(p.stdout[p.stdout.index("{"):])["jobs"][0]
    if job["error"]:
        raise RuntimeError(f"fio {rw} QD{qd} on {uri}: job error {job['error']}")
    return job


def measure(server, rw, qd, seconds, size_mb):
    before = cpu_seconds(server.pid)
    job = fio(server.uri, rw, qd, seconds, size_mb)
    after = cpu_seconds(server.pid)
    side = job["read" if rw == "randread" else "write"]
    ios = side["total_ios"]
    return {"iops": side["iops"], "p99_us": side["clat_ns"]["percentile"]["99.000000"] / 1000,
            "cpu_ns_per_io": (after - before) * 1e9 / ios if ios else float("nan"), "ios": ios}


def fmt_k(v):
    return f"{v / 1000:.1f}K"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=str(ROOT / "build/release/apps/sluice/sluice"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--skip", action="append", default=[], choices=SERVERS + TRANSPORTS)
    ap.add_argument("--out", default=str(RESULTS / "nbd.json"))
    a = ap.parse_args()
    for tool in ["fio", "nbdinfo", "taskset", "nbdkit", "qemu-storage-daemon"]:
        if not shutil.which(tool):
            sys.exit(f"nbd_bench: {tool} is not installed (scripts/deps.sh)")
    if os.cpu_count() < 2:
        sys.exit("nbd_bench: needs 2 cores (servers on core 0, fio on core 1)")
    servers = [s for s in SERVERS if s not in a.skip]
    transports = [t for t in TRANSPORTS if t not in a.skip]
    busy_before, load_before = machine_before_run()

    runs = {}  # (transport, server, rw, qd) -> [run]
    with tempfile.TemporaryDirectory(prefix="sluice-nbd-bench-") as d:
        tmp = Path(d)
        for r in range(a.repeat):
            for transport in transports:
                for kind in servers:
                    progress(f"repeat {r + 1}/{a.repeat}: {kind} over {transport}")
                    srv = Server(kind, transport, a, tmp)
                    try:
                        # Real data everywhere, so reads never hit holes.
                        fio(srv.uri, "write", 32, 0, a.size_mb, ["--bs=1M"])
                        for rw, qd in CELLS:
                            runs.setdefault((transport, kind, rw, qd), []).append(
                                measure(srv, rw, qd, a.seconds, a.size_mb))
                    finally:
                        srv.close()
    load_after = os.getloadavg()

    cells = []
    for (transport, kind, rw, qd), rs in runs.items():
        med = {k: statistics.median(x[k] for x in rs) for k in ("iops", "p99_us", "cpu_ns_per_io")}
        cells.append({"transport": transport, "server": kind, "rw": rw, "qd": qd, **med, "runs": rs})
    by = {(c["transport"], c["server"], c["rw"], c["qd"]): c for c in cells}

    print(f"\n{a.repeat} x {a.seconds:g} s per cell, medians; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; machine {busy_before:.0%} busy just before\n")
    head = "| transport | workload | QD | server | IOPS | p99 us | CPU ns/I/O |"
    peers = [p for p in servers if p != "sluice"]
    if "sluice" in servers:
        head += "".join(f" IOPS vs {p} | CPU vs {p} |" for p in peers)
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for transport in transports:
        for rw, qd in CELLS:
            for kind in servers:
                c = by[(transport, kind, rw, qd)]
                row = (f"| {transport} | {rw} | {qd} | {kind} | {fmt_k(c['iops'])} | {c['p99_us']:.0f} | "
                       f"{c['cpu_ns_per_io']:,.0f} |")
                if "sluice" in servers:
                    s = by[(transport, "sluice", rw, qd)]
                    for p in peers:
                        if kind == "sluice":
                            o = by[(transport, p, rw, qd)]
                            row += f" {s['iops'] / o['iops']:.2f} | {s['cpu_ns_per_io'] / o['cpu_ns_per_io']:.2f} |"
                        else:
                            row += " | |"
                print(row)

    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "repeat": a.repeat, "seconds": a.seconds,
           "size_mb": a.size_mb, "load_before": load_before, "busy_before": busy_before, "load_after": load_after,
           "server_core": SERVER_CORE, "fio_core": FIO_CORE,
           "versions": {"fio": subprocess.run(["fio", "--version"], capture_output=True, text=True).stdout.strip(),
                        "nbdkit": subprocess.run(["nbdkit", "--version"], capture_output=True, text=True).stdout.strip(),
                        "qemu-storage-daemon": subprocess.run(["qemu-storage-daemon", "--version"], capture_output=True,
                                                              text=True).stdout.splitlines()[0]},
           "cells": cells}
    write_results(a.out, out)


if __name__ == "__main__":
    main()
