"""How fast `grader batch` grades a class, against the floor, measured side by side in one run.

N submissions: copies of `maximize`'s solutions/ and samples/, plus two hostile ones (an
infinite loop at import, `os._exit` inside a probe). They run against a copy of `maximize`
with tight limits, so the hostile ones cost about a second of sandbox time, not minutes.

- floor: the benign submissions' CPU time with `--sandbox none` (checks and submission in this
  process, torch warm), summed and divided by the cores: no sandbox can grade them faster;
- `local` (and `docker` when `grader.sandbox.docker.engine_available()`): one pool of warm
  sandboxes, warmed once, then the benign submissions alone and the mixed class, each through
  `grade_batch` as `grader batch` runs it.

    python benchmarks/batch_benchmark.py [--n 20] [--jobs J]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from grader import assignments
from grader.batch import Entry, grade_batch
from grader.batch.command import default_jobs
from grader.sandbox.image import image_ref

LIMITS = "[limits]\nprobe_timeout = 2\nimport_timeout = 1\ntotal_timeout = 10\n"


def limited_maximize(root: Path) -> assignments.Assignment:
    """A copy of `maximize` with LIMITS, registered through GRADER_ASSIGNMENTS_DIR. Limits travel
    with each job, so the docker sandbox keeps the image of the real assignments."""
    os.environ.setdefault("GRADER_IMAGE", image_ref())
    shutil.copytree(assignments.get("maximize").directory, root / "maximize")
    toml = root / "maximize" / "assignment.toml"
    text = toml.read_text()
    toml.write_text(text[:text.index("[limits]")] + LIMITS + "\n" + text[text.index("[[checks]]"):])
    os.environ["GRADER_ASSIGNMENTS_DIR"] = str(root)
    return assignments.get("maximize")


def make_class(spec: assignments.Assignment, n: int) -> tuple[list[Entry], list[Entry]]:
    """(benign, hostile) entries, n in all."""
    files = sorted((spec.directory / "solutions").glob("*.*")) + sorted(spec.samples_dir.glob("*.py"))
    benign = [Entry(f"s{i:03d}", files[i % len(files)].name, files[i % len(files)].read_bytes())
              for i in range(n - 2)]
    good = (spec.directory / "solutions" / "student_style.py").read_text()
    hostile = [
        Entry("loop-at-import", "loop.py", b"while True:\n    pass\n"),
        Entry("exit-in-probe", "exit.py",
              good.replace("def grad_b(a, b, c):\n", "def grad_b(a, b, c):\n    import os; os._exit(3)\n").encode()),
    ]
    return benign, hostile


def floor_cpu_seconds(spec: assignments.Assignment, entries: list[Entry]) -> float:
    """Sum of each benign submission's CPU time graded in-process, after one warm-up grading."""
    import torch

    from grader.grading import grade_bytes
    from grader.sandbox.inprocess import InProcessSandbox

    torch.set_num_threads(1)  # as in the sandboxes' fork servers
    box = InProcessSandbox()
    grade_bytes(entries[0].data, entries[0].filename, spec, box)
    total = 0.0
    for entry in entries:
        started = time.process_time()
        grade_bytes(entry.data, entry.filename, spec, box)
        total += time.process_time() - started
    return total


def run_kind(kind: str, spec: assignments.Assignment, classes: dict[str, list[Entry]], jobs: int,
             floor: float) -> list[str]:
    from grader.sandbox.pool import SandboxPool

    started = time.monotonic()
    with SandboxPool(kind, jobs) as pool:
        warm = time.monotonic() - started
        lines = [f"{kind:<7} warm-up of {jobs} sandboxes: {warm:.2f} s"]
        for name, entries in classes.items():
            started = time.monotonic()
            results = list(grade_batch(entries, spec, pool, jobs=jobs))
            wall = time.monotonic() - started
            statuses = ", ".join(f"{count} {status}" for status, count in sorted(Counter(r.status for r in results).items()))
            mean = sum(r.elapsed for r in results) / len(results)
            lines.append(f"{kind:<7} {name:<7} {len(entries):>3} subs  wall {wall:6.2f} s (+{warm:.2f} s warm-up)  "
                         f"per submission {wall / len(entries):.3f} s wall, {mean:.3f} s in its sandbox  "
                         f"ratio to floor {wall / floor:5.1f}x ({(wall + warm) / floor:.1f}x with warm-up)  [{statuses}]")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="submissions in the class (at least 4)")
    parser.add_argument("--jobs", type=int, default=None, help="sandboxes (default: as `grader batch` picks)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batch-benchmark-") as root:
        spec = limited_maximize(Path(root))
        benign, hostile = make_class(spec, max(args.n, 4))
        cores = len(os.sched_getaffinity(0))
        jobs = args.jobs or default_jobs(spec, len(benign) + len(hostile))
        cpu = floor_cpu_seconds(spec, benign)
        floor = cpu / cores
        lines = [f"floor   benign  {len(benign):>3} subs  {cpu:.2f} s CPU in-process / {cores} cores = {floor:.2f} s"
                 f"  ({cpu / len(benign):.3f} s CPU per submission)"]
        kinds = ["local"]
        try:
            from grader.sandbox.docker import engine_available
        except ImportError:
            lines.append("docker  skipped: grader.sandbox.docker is not there")
        else:
            if engine_available():
                kinds.append("docker")
            else:
                lines.append("docker  skipped: no engine or no sandbox image")
        for kind in kinds:
            lines += run_kind(kind, spec, {"benign": benign, "mixed": benign + hostile}, jobs, floor)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
