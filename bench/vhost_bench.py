#!/usr/bin/python3
"""vhost-user-blk in a QEMU guest: Sluice's back end against qemu-storage-daemon's, and QEMU's
own virtio-blk, on the same kind of disk.

Peers (the serving process pinned to core 0, the TCG guest, one vCPU, to core 1):
  sluice           `sluice serve -S DIR`: a vhost-user-blk controller on a malloc bdev
  qsd              qemu-storage-daemon's vhost-user-blk export of a file in /dev/shm
                   (aio=io_uring through the page cache, its RAM device)
  qemu-virtio-blk  QEMU's own virtio-blk-pci on that file (io_uring): no separate serving
                   process, so no CPU figure
Each peer boots the guest once (scripts/guest/, bench/vhost_bench_inside.sh): fio 4 KiB random
reads on /dev/vda at QD1 and QD32, --repeat rounds of --seconds. Per cell: guest IOPS and p99
(fio's) and the serving process's host CPU per I/O (/proc/PID/stat between the cell's start
and end lines on the console, over fio's I/O count). Medians of the rounds.

Under TCG the guest's emulation dominates the IOPS, so the serving process's CPU per I/O is
the figure that carries over to real hardware. Goal: guest IOPS at least qsd's, at no more
than half its CPU per I/O. Prints a markdown table; writes bench/results/vhost.json.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (  # noqa: E402
    RESULTS, ROOT, cpu_seconds, die_with_parent, machine_before_run, median_runs, progress, scratch_file,
    stop_process, write_results)

GUEST = ROOT / "scripts" / "guest"
PEERS = ["sluice", "qsd", "qemu-virtio-blk"]
SERVER_CORE, GUEST_CORE = 0, 1


def wait_for_socket(path, proc, log, what):
    deadline = time.monotonic() + 20
    while not Path(path).is_socket():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up: {Path(log).read_text()[-800:]}")
        time.sleep(0.05)


def start_server(peer, args, tmp, image):
    """The serving process and the run-guest.sh disk option for `peer` (None: QEMU serves)."""
    log = tmp / f"{peer}.log"
    sock = tmp / "sockets" / "vhost.0"
    sock.parent.mkdir(exist_ok=True)
    if peer == "sluice":
        cfg = {"subsystems": [
            {"subsystem": "bdev", "config": [{"method": "bdev_malloc_create", "params": {
                "name": "Malloc0", "num_blocks": (args.size_mb << 20) // 512, "block_size": 512}}]},
            {"subsystem": "vhost_blk", "config": [{"method": "vhost_create_blk_controller", "params": {
                "ctrlr": "vhost.0", "dev_name": "Malloc0"}}]}]}
        (tmp / "serve.json").write_text(json.dumps(cfg))
        cmd = ["taskset", "-c", str(SERVER_CORE), args.sluice, "serve", "-m", str(SERVER_CORE), "-r",
               str(tmp / "rpc.sock"), "-S", str(sock.parent), "-c", str(tmp / "serve.json")]
    elif peer == "qsd":
        cmd = ["taskset", "-c", str(SERVER_CORE), "qemu-storage-daemon", "--blockdev",
               f"driver=file,node-name=disk,filename={image},aio=io_uring,cache.direct=off",
               "--export", f"type=vhost-user-blk,id=e0,node-name=disk,addr.type=unix,addr.path={sock},"
               "writable=on,num-queues=1"]
    else:
        return None, ["--virtio-blk", f"{image},1"]
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
    try:
        wait_for_socket(sock, proc, log, peer)
    except Exception:
        stop_process(proc)
        raise
    return proc, ["--vhost-user-blk", f"{sock},1"]


def run_guest(peer, args, tmp, server, disk):
    """Boots the guest on `disk`; {cell: [cpu seconds of the server]} and the console text."""
    log = tmp / f"{peer}-console.log"
    cmd = ["taskset", "-c", str(GUEST_CORE), str(GUEST / "run-guest.sh"), "--kernel", str(args.kdir / "vmlinux"),
           "--initrd", str(tmp / "initrd.cpio"), "--smp", "1", "--log", str(log), "--quiet", "--ns", "16M",
           "--timeout", str(120 + args.repeat * 2 * (args.seconds + 5)), *disk]
    guest = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             preexec_fn=die_with_parent)
    cpu, started, seen = {}, {}, 0
    while True:
        done = guest.poll() is not None
        text = log.read_text(errors="replace") if log.exists() else ""
        # Whole lines only: the last one may still be being written.
        complete = (text if done else text[:text.rfind("\n") + 1]).replace("\r", "").splitlines()
        for line in complete[seen:]:
            if line.startswith("GUEST-CELL-START ") and server is not None:
                started[line.split()[1]] = cpu_seconds(server.pid)
            elif line.startswith("GUEST-CELL-END ") and server is not None:
                name = line.split()[1]
                cpu[name] = cpu_seconds(server.pid) - started[name]
        seen = len(complete)
        if done:
            break
        time.sleep(0.02)
    if guest.returncode != 0:
        raise RuntimeError(f"{peer}: guest exit {guest.returncode}: {guest.stderr.read()[-500:]}\n"
                           + "\n".join(l for l in complete if l.startswith("FAIL")))
    return cpu, text


def cells(text, cpu):
    """{qd: [metrics per round]} from the GUEST-JSON lines."""
    out = {}
    for line in text.replace("\r", "").splitlines():
        at = line.find("GUEST-JSON ")
        if at < 0:
            continue
        _, name, body = line[at:].split(" ", 2)
        job = json.loads(body[body.find("{"):])["jobs"][0]
        if job["error"]:
            raise RuntimeError(f"fio error {job['error']} in {name}")
        rd = job["read"]
        m = {"iops": rd["iops"], "p99_us": rd["clat_ns"]["percentile"]["99.000000"] / 1000.0}
        if name in cpu:
            m["server_cpu_us_per_io"] = cpu[name] * 1e6 / max(rd["total_ios"], 1)
        out.setdefault(int(name.split("/")[0][2:]), []).append(m)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", default=str(ROOT / "build/release/apps/sluice/sluice"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--size-mb", type=int, default=64)
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--out", default=str(RESULTS / "vhost.json"))
    args = ap.parse_args()
    for tool, pkg in {"qemu-system-x86_64": "qemu-system-x86", "qemu-storage-daemon": "qemu-system-x86",
                      "fio": "fio", "taskset": "util-linux"}.items():
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is missing (apt-get install {pkg}, or scripts/deps.sh)")
    args.kdir = Path(subprocess.run([str(GUEST / "fetch-kernel.sh")], check=True, capture_output=True,
                                    text=True).stdout.strip())
    peers = [p for p in args.peers.split(",") if p]
    busy, load = machine_before_run()
    results = {}
    with tempfile.TemporaryDirectory(prefix="sluice-vhost-bench-") as d:
        tmp = Path(d)
        subprocess.run([str(GUEST / "make-initramfs.sh"), "--kernel-dir", str(args.kdir), "--out",
                        str(tmp / "initrd.cpio"), "--script", str(ROOT / "bench/vhost_bench_inside.sh"),
                        "--module", "virtio_pci", "--module", "virtio_blk", "--bin", shutil.which("fio"),
                        "--env", f"BENCH_T={args.seconds}", "--env", f"BENCH_REPEAT={args.repeat}"], check=True)
        image = scratch_file("/dev/shm", args.size_mb)
        try:
            for peer in peers:
                progress(f"{peer}: {args.repeat} rounds of QD1 and QD32, {args.seconds} s each")
                server, disk = start_server(peer, args, tmp, image)
                try:
                    cpu, text = run_guest(peer, args, tmp, server, disk)
                finally:
                    if server is not None:
                        stop_process(server)
                results[peer] = {qd: median_runs(runs) for qd, runs in sorted(cells(text, cpu).items())}
        finally:
            image.unlink()

    print("\n| QD | peer | guest IOPS | p99 µs | serving CPU µs/I/O | IOPS vs qsd | CPU vs qsd |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for qd in (1, 32):
        base = results.get("qsd", {}).get(qd)
        for peer in peers:
            m = results[peer].get(qd)
            if m is None:
                continue
            cpu = m.get("server_cpu_us_per_io")
            iops_ratio = f"{m['iops'] / base['iops']:.2f}x" if base else "-"
            base_cpu = base.get("server_cpu_us_per_io") if base else None
            cpu_ratio = f"{cpu / base_cpu:.2f}x" if cpu is not None and base_cpu else "-"
            print(f"| {qd} | {peer} | {m['iops']:.0f} | {m['p99_us']:.0f} | "
                  f"{'-' if cpu is None else f'{cpu:.1f}'} | {iops_ratio} | {cpu_ratio} |")
    write_results(args.out, {"machine_busy_before": busy, "load_before": load, "seconds": args.seconds,
                             "repeat": args.repeat, "results": {p: {str(q): v for q, v in r.items()}
                                                                for p, r in results.items()}})


if __name__ == "__main__":
    main()
