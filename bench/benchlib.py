"""Pieces every bench/ script shares: running commands, medians, scratch loop devices and
kernel filesystems that are always torn down, progress lines and plotting setup."""
import ctypes
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def sluice_perf(sluice, target, qd, seconds, core, extra=()):
    """One `sluice perf` 4 KiB random-read run: IOPS, p99 latency and CPU ns per I/O."""
    out = run([sluice, "perf", "--target", target, "-w", "randread", "-o", "4k", "-q", str(qd), "-t", str(seconds),
               "-c", str(core), "--json", *extra]).stdout
    t = json.loads(out)["total"]
    return {"iops": t["iops"], "p99_us": t["lat_us"]["p99"], "cpu_ns_per_io": t["cpu_ns_per_io"]}


_libc = ctypes.CDLL(None, use_errno=True)
TICK = os.sysconf("SC_CLK_TCK")


def die_with_parent():
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: nothing outlives this script


def machine_busy(seconds=5):
    """The share of both cores busy over `seconds` before the run (others' builds show here)."""
    def sample():
        v = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
        return sum(v), v[3] + v[4]
    t0, i0 = sample()
    time.sleep(seconds)
    t1, i1 = sample()
    return 1 - (i1 - i0) / max(1, t1 - t0)


def machine_before_run():
    """How busy the machine is just before a run, printed and returned for the results file:
    (share of both cores busy over 5 s, the three load averages)."""
    busy, load = machine_busy(), os.getloadavg()
    progress(f"before the run: load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, machine {busy:.0%} busy over 5 s")
    return busy, load


def write_results(path, out):
    """Writes a bench's results as JSON (bench/results/ by default) and says where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    progress(f"wrote {path}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of the whole process (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat(5)



def stop_process(proc, grace=10):
    """SIGTERM, `grace` seconds to exit cleanly, then SIGKILL: a server never outlives its bench."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def progress(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def median_runs(runs):
    """The median of every field of a list of runs (dicts of numbers), plus the raw runs."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]} | {"runs": runs}


def median_of(fn, repeat):
    """Runs fn() `repeat` times; the median of every numeric field, plus the raw runs."""
    return median_runs([fn() for _ in range(repeat)])


def fill(path, size_mb):
    # Real data, not holes: reads of holes never reach the device.
    run(["fio", "--name=fill", f"--filename={path}", "--rw=write", "--bs=1M", f"--size={size_mb}M",
         "--ioengine=psync", "--output-format=terse"])


def scratch_file(directory, size_mb, prefix="sluice-bench-"):
    """A file of size_mb MiB of real data in `directory`; the caller unlinks it."""
    path = Path(tempfile.mkstemp(prefix=prefix, dir=str(directory))[1])
    fill(path, size_mb)
    return path


class LoopDevice:
    """A loop device over a file with direct I/O (no double caching); removed by close()."""

    def __init__(self, backing):
        self.dev = run(["losetup", "--find", "--show", "--direct-io=on", str(backing)]).stdout.strip()

    def close(self):
        subprocess.run(["losetup", "-d", self.dev], check=False)


class Ext4Mount:
    """ext4 made on a block device and mounted on a scratch directory; unmounted by close()."""

    def __init__(self, dev):
        run(["mkfs.ext4", "-q", "-F", dev])
        self.path = Path(tempfile.mkdtemp(prefix="sluice-bench-ext4-"))
        run(["mount", dev, str(self.path)])

    def close(self):
        subprocess.run(["umount", str(self.path)], check=False)
        self.path.rmdir()


def pyplot():
    """matplotlib's pyplot with a file-only backend, or None (then scripts skip the plot)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        progress("matplotlib missing; no plot")
        return None
