"""`grader batch`: a class from a directory or zip into DIR, with a live progress bar.

Re-running the same command grades only submissions that are new or changed (or whose grading
failed for the grader's own reasons); the first Ctrl-C starts nothing new and lets the
submissions already in a sandbox finish, a second one quits at once. The gradebooks are
rewritten after every result, atomically, so they are consistent whenever the run stops.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from grader.assignments import Assignment
from grader.batch.collect import CollectError, Entry, collect
from grader.batch.core import Result, fingerprint, grade_batch
from grader.batch.output import BatchState, atomic_write, write_gradebooks, write_report
from grader.batch.summary import render_summary_html, summarize, summary_table
from grader.sandbox.pool import SandboxPool

# Resident memory of one warm fork server and its grader process, beyond what the student may use.
SANDBOX_OVERHEAD_MB = 500
INTERRUPTED = 130


def default_out(path: Path) -> Path:
    """`class.zip` -> `class-graded/`, `submissions/` -> `submissions-graded/`, beside PATH."""
    path = path.resolve()
    return path.parent / f"{path.stem if path.is_file() else path.name}-graded"


def _available_mb() -> int | None:
    """Memory this process may still use: MemAvailable, capped by a cgroup v2 limit if any."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) // 1024)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            used = int(Path("/sys/fs/cgroup/memory.current").read_text())
            found.append((int(limit) - used) >> 20)
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def default_jobs(assignment: Assignment, pending: int) -> int:
    """As many sandboxes as cores, memory (overhead + the student's limit each) and the work allow."""
    cores = len(os.sched_getaffinity(0))
    available = _available_mb()
    by_memory = available // (SANDBOX_OVERHEAD_MB + assignment.limits.memory_mb) if available else cores
    return max(1, min(cores, by_memory, pending))


class _StopOnInterrupt:
    """First Ctrl-C sets `stop` (in-flight submissions finish); the second raises KeyboardInterrupt."""

    def __init__(self, stop: threading.Event, console: Console):
        self.stop = stop
        self.console = console
        self.pressed = False
        self.previous = None

    def _handle(self, signum, frame) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
        self.stop.set()
        self.console.print("[yellow]stopping:[/] finishing the submissions in progress (Ctrl-C again to quit now)")

    def __enter__(self) -> "_StopOnInterrupt":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


class _Run:
    """The results of one `grader batch` run: earlier ones reused, new ones written as they come."""

    def __init__(self, entries: list[Entry], assignment: Assignment, out: Path, canvas_id: str | None):
        self.entries, self.assignment, self.out, self.canvas_id = entries, assignment, out, canvas_id
        self.state = BatchState(out)
        self.results: dict[str, Result] = {}
        self.pending: list[Entry] = []
        self.graded = 0
        for entry in entries:
            earlier = self.state.reusable(entry.student, fingerprint(entry), assignment)
            if earlier:
                self.results[entry.student] = earlier
            else:
                self.pending.append(entry)
        self.skipped = len(self.results)

    def in_order(self) -> list[Result]:
        return [self.results[e.student] for e in self.entries if e.student in self.results]

    def write_gradebooks(self) -> None:
        write_gradebooks(self.out, self.in_order(), self.assignment, self.canvas_id)

    def keep(self, result: Result) -> None:
        """Record one finished submission everywhere before the next one is counted."""
        if result.report is not None:
            write_report(self.out, result)
        self.state.save(result)
        self.results[result.student] = result
        self.graded += 1
        self.write_gradebooks()


def run_batch(path: Path, assignment: Assignment, sandbox: str, *, jobs: int | None = None, out: Path | None = None,
              id_pattern: str | None = None, canvas_id: str | None = None, console: Console | None = None) -> int:
    """Grade PATH into OUT; return the exit status (0 when the run finished, 130 when interrupted).

    Raises CollectError for an unusable PATH and SandboxError when no sandbox can start.
    """
    console = console or Console(stderr=True, soft_wrap=True)
    out = out or default_out(path)
    entries, warnings = collect(path, id_pattern, exclude=out)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if not entries:
        raise CollectError(f"{path}: no submissions found")
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(entries, assignment, out, canvas_id)
    run.write_gradebooks()
    if run.skipped:
        console.print(f"{run.skipped} of {len(entries)} already graded in {out}: skipped")
    started = time.monotonic()
    interrupted = False
    if run.pending:
        if sandbox == "none":
            jobs = 1  # grade_batch runs the in-process sandbox one at a time: one is all it needs
        jobs = min(jobs or default_jobs(assignment, len(run.pending)), len(run.pending))
        try:
            interrupted = _grade(run, sandbox, jobs, console)
        except KeyboardInterrupt:
            interrupted = True
    final = run.in_order()
    summary = summarize(final, assignment, {
        "sandbox": sandbox, "jobs": jobs, "graded": run.graded, "skipped": run.skipped,
        "wall_seconds": round(time.monotonic() - started, 3), "interrupted": interrupted,
    })
    atomic_write(out / "summary.json", json.dumps(summary, indent=2))
    atomic_write(out / "summary.html", render_summary_html(summary, final))
    Console().print(summary_table(summary))
    if interrupted:
        console.print(f"[yellow]interrupted:[/] {len(final)} of {len(entries)} graded into {out}; "
                      "run the same command again to grade the rest")
        return INTERRUPTED
    console.print(f"gradebook: {out / 'gradebook.csv'}\nsummary:   {out / 'summary.html'}")
    return 0


def _grade(run: _Run, sandbox: str, jobs: int, console: Console) -> bool:
    """Grade the pending entries with a live progress bar; return whether Ctrl-C stopped the run early."""
    with console.status(f"warming {jobs} {sandbox} sandbox{'es' if jobs > 1 else ''}"):
        pool = SandboxPool(sandbox, jobs)
    stop = threading.Event()
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("[red]{task.fields[failed]} failed"), TextColumn("ETA"), TimeRemainingColumn(),
                        TimeElapsedColumn(), console=console)
    with pool, progress, _StopOnInterrupt(stop, console) as interrupt:
        task = progress.add_task(f"{run.assignment.slug} on {jobs} {sandbox}", total=len(run.pending), failed=0)
        failed = 0
        for result in grade_batch(run.pending, run.assignment, pool, jobs=jobs, stop=stop):
            run.keep(result)
            failed += not result.ok
            progress.update(task, advance=1, failed=failed)
        return interrupt.pressed
