"""Sandbox speed, measured side by side in one run.

    python benchmarks/sandbox_benchmark.py [--kinds local,docker] [--notebooks 20]

For each sandbox kind that can run here it prints:
- cold: a whole `grader grade` command (process start, sandbox warm-up, one submission);
- warm: one submission in an already warm sandbox (median of several), and its ratio to `none`
  (the same checks in-process, no isolation at all);
- class: N notebooks through `grade_batch` (what `grader batch` runs: a pool of warm sandboxes,
  as many as `grader batch` picks, warm-up included) against the same N graded with a fresh
  sandbox each, one after another (a container or fork server per submission, the way graders
  without a fork server work), and the speed-up.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from grader import assignments
from grader.batch import grade_batch
from grader.batch.command import default_jobs
from grader.grading import grade_bytes
from grader.sandbox import open_sandbox
from grader.sandbox.pool import SandboxPool

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "assignments" / "maximize" / "solutions" / "lecture.ipynb"


def available(kind: str) -> bool:
    if kind != "docker":
        return True
    try:
        from grader.sandbox.docker import engine_available
    except ImportError:
        return False
    return engine_available()


def cold(kind: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(NOTEBOOK), "--assignment", "maximize",
                    "--sandbox", kind, "--format", "json"], check=True, capture_output=True)
    return time.perf_counter() - started


def warm(kind: str, repeats: int) -> float:
    spec, data = assignments.get("maximize"), NOTEBOOK.read_bytes()
    box = open_sandbox(kind)
    try:
        grade_bytes(data, NOTEBOOK.name, spec, box)  # the first one also pays first-use costs
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            report = grade_bytes(data, NOTEBOOK.name, spec, box)
            times.append(time.perf_counter() - started)
            assert report.score == report.max_score, report.to_json()
    finally:
        box.close()
    return statistics.median(times)


def fresh_each(kind: str, count: int) -> float:
    spec, data = assignments.get("maximize"), NOTEBOOK.read_bytes()
    started = time.perf_counter()
    for _ in range(count):
        box = open_sandbox(kind)
        try:
            grade_bytes(data, NOTEBOOK.name, spec, box)
        finally:
            box.close()
    return time.perf_counter() - started


def batch(kind: str, count: int) -> tuple[float, int]:
    spec, data = assignments.get("maximize"), NOTEBOOK.read_bytes()
    jobs = default_jobs(spec, count)
    started = time.perf_counter()
    with SandboxPool(kind, jobs) as pool:
        results = list(grade_batch([(f"s{n}", NOTEBOOK.name, data) for n in range(count)], spec, pool))
    assert all(r.score == spec.max_score for r in results), [r.status for r in results]
    return time.perf_counter() - started, jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="local,docker")
    parser.add_argument("--notebooks", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    baseline = warm("none", args.repeats)
    print(f"none   warm submission {baseline * 1000:7.0f} ms (in-process, no isolation: the floor)")
    for kind in args.kinds.split(","):
        if not available(kind):
            print(f"{kind:<6} skipped: not available on this machine")
            continue
        warm_time = warm(kind, args.repeats)
        print(f"{kind:<6} cold grade command   {cold(kind):7.2f} s")
        print(f"{kind:<6} warm submission      {warm_time * 1000:7.0f} ms  ({warm_time / baseline:.1f}x none)")
        (pooled, jobs), fresh = batch(kind, args.notebooks), fresh_each(kind, args.notebooks)
        print(f"{kind:<6} {args.notebooks} notebooks: grade_batch on {jobs} warm sandboxes {pooled:6.1f} s, "
              f"a fresh sandbox each {fresh:6.1f} s  ({fresh / pooled:.1f}x faster)")


if __name__ == "__main__":
    main()
