#!/usr/bin/env python3
"""Checks the reports a guest lane's console log carries (scripts/guest/guest-lib.sh's
"GUEST-JSON <name> <json>" lines) and the guest kernel's own word.

Usage: guest_reports.py CONSOLE_LOG NAME...   every NAME must have a good report

A report is fio's JSON (no error; reads done; a job with verify= must have written too: its
writes are what the reads verified) or `sluice perf --json` / `sluice nvme perf --json` (no
errors, I/Os done). Kernel trouble anywhere in the log fails the lane even when every report
is good: an IOMMU fault means a device touched memory its driver never mapped for it.
Prints one ok/FAIL line per report; exit 0 when all are good and none is missing.
"""
import json
import sys

KERNEL_TROUBLE = ("DMAR: [DMA", "BUG:", "Oops", "WARNING:", "Call Trace")


def summary(report):
    if "fio version" in report:
        job = report["jobs"][0]
        assert job["error"] == 0, f"fio error {job['error']}"
        reads, writes = job["read"]["total_ios"], job["write"]["total_ios"]
        assert reads > 0, "no fio reads"
        if job.get("job options", {}).get("verify"):
            assert writes > 0, "a verify job that wrote nothing"
            return f"{writes} writes verified by {reads} reads"
        return f"{job['read']['iops']:.0f} IOPS"
    total = report.get("total", report)  # sluice perf's schema; `sluice nvme perf` reports flat
    assert total["errors"] == 0, f"{total['errors']} errors"
    assert total["ios"] > 0, "no I/Os"
    return f"{total['iops']:.0f} IOPS, {total['cpu_ns_per_io']:.0f} CPU ns/IO"


def main(log, want):
    seen, bad = set(), []
    for line in open(log, errors="replace").read().replace("\r", "").splitlines():
        if any(k in line for k in KERNEL_TROUBLE) and "GUEST-JSON" not in line:
            bad.append(f"guest kernel: {line.strip()}")
        at = line.find("GUEST-JSON ")
        if at < 0:
            continue
        _, name, text = line[at:].split(" ", 2)
        try:
            # fio may print notes ("multiple writers may overwrite...") before its JSON.
            print(f"ok   report {name}: {summary(json.loads(text[text.find('{'):]))}")
            seen.add(name)
        except Exception as e:  # a malformed or failed report is a failure, whatever the reason
            bad.append(f"report {name}: {e!r}")
    for b in bad:
        print(f"FAIL {b}")
    missing = sorted(want - seen)
    if missing:
        print(f"FAIL reports missing: {' '.join(missing)}")
    return 1 if bad or missing else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], set(sys.argv[2:])))
