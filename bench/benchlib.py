"""Pieces every bench/ script shares: running commands, medians, scratch loop devices and
kernel filesystems that are always torn down, progress lines and plotting setup."""
import json
import statistics
import subprocess
import sys
import tempfile
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


def progress(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def median_of(fn, repeat):
    """Runs fn() `repeat` times; the median of every numeric field, plus the raw runs."""
    runs = [fn() for _ in range(repeat)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]} | {"runs": runs}


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
