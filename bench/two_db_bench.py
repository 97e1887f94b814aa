#!/usr/bin/env python3
"""Two RocksDB databases in one process, as TiKV keeps them (bench/two_db_bench.cc: a raft-log
DB taking small synced batches, a KV DB applying them unsynced), on SluiceFS and on ext4 over
the same kind of device: each a raw loop device over a file on the root filesystem, as the
main job's device pair (bench/rocksdb_bench.py). Reports applied entries per second, medians
of --repeat runs, each on a freshly made file system. Needs root (loop devices, mount).

  /usr/bin/python3 bench/two_db_bench.py [--seconds 5] [--repeat 3] [--batch 16]
"""
import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import RESULTS, ROOT, Ext4Mount, LoopDevice, median_of, progress, run, scratch_file  # noqa: E402

RESULT = re.compile(r"applied (\d+) entries in ([\d.]+) s: (\d+) entries/s")


def one_run(bench, args, env=None, fs_uri=None, db_dir=None):
    cmd = [bench, f"--dir={db_dir}", f"--seconds={args.seconds}", f"--batch={args.batch}", f"--value={args.value}"]
    if fs_uri:
        cmd.append(f"--fs_uri={fs_uri}")
    out = run(cmd, env=os.environ | (env or {}), timeout=600).stdout
    m = RESULT.search(out)
    if not m:
        raise RuntimeError(f"two_db_bench printed no result: {out}")
    return {"entries_per_sec": float(m.group(3))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=str(ROOT / "build/release"))
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16, help="raft entries per synced write")
    ap.add_argument("--value", type=int, default=256, help="bytes per entry")
    ap.add_argument("--size-mb", type=int, default=2048)
    args = ap.parse_args()
    build = Path(args.build)
    bench, sluice, plugin = (build / "bench/two_db_bench", build / "apps/sluice/sluice",
                             build / "src/rocksdb/libsluice_rocksdb.so")
    for need in (bench, sluice, plugin):
        if not need.exists():
            sys.exit(f"bench: {need} not found (build first: scripts/build.sh build/release)")
    if os.geteuid() != 0:
        sys.exit("bench: needs root for loop devices and mounting ext4")

    cleanup = []
    try:
        files = [scratch_file(RESULTS, args.size_mb, prefix=f"sluice-2db-{k}-") for k in ("raw", "ext4")]
        cleanup += [f.unlink for f in files]
        raw, kdev = LoopDevice(files[0]), LoopDevice(files[1])
        cleanup += [raw.close, kdev.close]

        def on_sluice():
            run([str(sluice), "mkfs", "--force", f"uring:{raw.dev}"])
            return one_run(str(bench), args, {"LD_PRELOAD": str(plugin)}, f"sluice://uring:{raw.dev}", "/tikv")

        def on_ext4():
            mnt = Ext4Mount(kdev.dev)
            try:
                return one_run(str(bench), args, db_dir=str(mnt.path / "tikv"))
            finally:
                mnt.close()

        progress(f"SluiceFS on {raw.dev}, {args.repeat} x {args.seconds} s")
        a = median_of(on_sluice, args.repeat)
        progress(f"ext4 on {kdev.dev}, {args.repeat} x {args.seconds} s")
        b = median_of(on_ext4, args.repeat)
    finally:
        for undo in reversed(cleanup):
            try:
                undo()
            except Exception as e:  # keep tearing down
                progress(f"cleanup: {e}")

    ratio = a["entries_per_sec"] / b["entries_per_sec"]
    print(f"\nTwo RocksDB DBs in one process (raft log synced in batches of {args.batch}, KV applied "
          f"unsynced), {args.value}-byte entries, medians of {args.repeat} x {args.seconds} s:")
    print(f"  SluiceFS {a['entries_per_sec']:>10.0f} applied entries/s")
    print(f"  ext4     {b['entries_per_sec']:>10.0f} applied entries/s")
    print(f"  SluiceFS/ext4 = {ratio:.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "seconds": args.seconds, "repeat": args.repeat,
           "batch": args.batch, "value": args.value, "nproc": os.cpu_count(), "sluice": a, "ext4": b, "ratio": ratio}
    (RESULTS / "two_db.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
