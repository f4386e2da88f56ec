"""Grade a class through a pool of warm sandboxes, one result per student as each finishes.

This is the part the CLI and the HTTP service share: give it entries (student id, filename,
bytes) and a `SandboxPool`; it yields `Result`s. Nothing here writes files or prints.
"""

from __future__ import annotations

import ast
import hashlib
import platform
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from importlib.metadata import version as package_version

from grader import __version__
from grader.assignments import Assignment
from grader.batch.collect import Entry
from grader.grading import grade_submission, new_submission_id
from grader.intake import DEFAULT_MAX_BYTES, IntakeError, Submission, read_submission
from grader.report import AssignmentRef, Report, RunEnvironment, TestResult, now
from grader.sandbox.pool import SandboxPool

# `graded` is a normal run; the others name what went wrong.
BATCH_STATUSES = ("graded", "rejected", "error", "out_of_memory", "timeout", "crashed")
_MEMORY_SIGNS = ("MemoryError", "can't allocate memory", "std::bad_alloc", "out of memory")
_CRASH_SIGNS = ("student process died",)


@dataclass
class Result:
    """One student's outcome; everything but `report` is kept in the batch state file."""

    student: str
    filename: str
    slug: str
    version: str
    sha256: str
    status: str
    score: float
    max_score: float
    message: str = ""
    name: str = ""
    source_hash: str | None = None
    elapsed: float = 0.0
    checks: dict[str, dict] = field(default_factory=dict)
    retry: bool = False  # the grader failed, not the submission: grade it again next run
    report: Report | None = field(default=None, compare=False)

    def record(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "report"}

    @classmethod
    def from_record(cls, record: dict) -> "Result":
        return cls(**record)

    @property
    def ok(self) -> bool:
        return self.status == "graded"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(entry: Entry) -> str:
    """What a re-run compares: the submitted bytes, or the collection problem that stood in for them."""
    return sha256(entry.problem.encode() if entry.problem else entry.data)


class _Normalise(ast.NodeTransformer):
    """Drop what copying code can change for free: docstrings and `pass` (also IPython magics' stand-in)."""

    def visit_Expr(self, node: ast.Expr):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None
        return self.generic_visit(node)

    def visit_Pass(self, node: ast.Pass):
        return None


def source_hash(submission: Submission) -> str:
    """A hash that ignores comments, whitespace, docstrings, cell boundaries and notebook outputs.

    Parsed code compares by its syntax tree, so a .py and a notebook with the same code match; a
    cell that does not parse falls back to its text without comments and with whitespace collapsed.
    """
    body, broken = [], []
    for cell in submission.cells:
        try:
            body.extend(ast.parse(cell.source).body)
        except (SyntaxError, ValueError):
            broken.append(" ".join(re.sub(r"#.*", "", cell.source).split()))
    tree = _Normalise().visit(ast.Module(body=body, type_ignores=[]))
    return sha256("\n".join([ast.dump(tree), *broken]).encode())


def classify(report: Report) -> tuple[str, str]:
    """A batch status and a one-line reason, from what the report says happened."""
    if report.status != "graded":
        reasons = [n.message for n in report.notes if n.kind in ("syntax_error", "sandbox")]
        return report.status, (reasons or [report.status])[0]
    texts = [n.message for n in report.notes] + [t.output for t in report.tests if t.status != "passed"]
    for status, signs in (("out_of_memory", _MEMORY_SIGNS), ("crashed", _CRASH_SIGNS)):
        if hit := next((text for text in texts if any(sign in text for sign in signs)), None):
            return status, hit.splitlines()[0]
    if timed_out := [t for t in report.tests if t.status == "timeout"]:
        return "timeout", timed_out[0].output.splitlines()[0] if timed_out[0].output else "timeout"
    return "graded", ""


def rejected_report(assignment: Assignment, message: str, sandbox: str) -> Report:
    """A report for a submission intake refused: every check `not_run`, saying why."""
    stamp = now()
    return Report(
        submission_id=new_submission_id(),
        assignment=AssignmentRef(slug=assignment.slug, version=assignment.version),
        status="rejected", score=0.0, max_score=assignment.max_score,
        tests=[TestResult(id=c.id, name=c.name, function=c.function, score=0.0, max_score=c.points,
                          status="not_run", output=f"not run: {message}", visibility=c.visibility)
               for c in assignment.checks],
        started_at=stamp, finished_at=stamp, execution_time=0.0,
        environment=RunEnvironment(grader=__version__, torch=package_version("torch"),
                                   python=platform.python_version(), sandbox=sandbox),
    )


def grade_entry(entry: Entry, assignment: Assignment, pool: SandboxPool,
                max_bytes: int = DEFAULT_MAX_BYTES) -> Result:
    """Grade one entry; never raises for anything the submission, a sandbox or the grader does."""
    base = dict(student=entry.student, name=entry.name or entry.student, filename=entry.filename,
                slug=assignment.slug, version=assignment.version, sha256=fingerprint(entry),
                max_score=assignment.max_score)
    try:
        return _grade_entry(entry, assignment, pool, max_bytes, base)
    except Exception as exc:  # a sandbox that cannot start, a harness bug: the grader's fault, retried next run
        return Result(**base, status="error", score=0.0, message=f"grading failed: {exc}", retry=True)


def _grade_entry(entry: Entry, assignment: Assignment, pool: SandboxPool, max_bytes: int, base: dict) -> Result:
    try:
        if entry.problem:
            raise IntakeError(entry.problem)
        submission = read_submission(entry.data, entry.filename, max_bytes)
    except IntakeError as exc:
        report = rejected_report(assignment, str(exc), pool.kind)
        return Result(**base, status="rejected", score=0.0, message=str(exc), report=report,
                      checks=_checks(report))
    code_hash = source_hash(submission)
    with pool.sandbox() as box:
        report = grade_submission(submission, assignment, box)
    return report_result(base, report, code_hash)


def report_result(base: dict, report: Report, code_hash: str | None) -> Result:
    """The Result of a report, however it was graded (here, or by the service's workers)."""
    status, message = classify(report)
    return Result(**base, status=status, score=report.score, message=message, source_hash=code_hash,
                  elapsed=report.execution_time, checks=_checks(report), report=report)


def _checks(report: Report) -> dict[str, dict]:
    return {t.id: {"score": t.score, "status": t.status} for t in report.tests}


def grade_batch(entries: Iterable[Entry | tuple[str, str, bytes]], assignment: Assignment, pool: SandboxPool, *,
                jobs: int | None = None, stop: threading.Event | None = None) -> Iterator[Result]:
    """Grade entries on `jobs` threads (default: the pool's size) and yield results as they finish.

    Setting `stop` starts no new submission; the ones already in a sandbox still finish and are
    yielded, so a stopped batch hands out only complete results. Closing the generator also stops
    it, dropping in-flight results.
    """
    todo: queue.Queue[Entry] = queue.Queue()
    for item in entries:
        todo.put(item if isinstance(item, Entry) else Entry(*item))
    stop = stop or threading.Event()
    done: queue.Queue[Result] = queue.Queue()

    def work() -> None:
        while not stop.is_set():
            try:
                entry = todo.get_nowait()
            except queue.Empty:
                return
            done.put(grade_entry(entry, assignment, pool))

    if pool.kind == "none":
        jobs = 1  # the in-process sandbox shares this process's cwd and stdout: one at a time
    workers = [threading.Thread(target=work, name=f"batch-{n}", daemon=True)
               for n in range(max(1, min(jobs or pool.size, todo.qsize())))]
    for worker in workers:
        worker.start()
    try:
        while any(w.is_alive() for w in workers) or not done.empty():
            try:
                yield done.get(timeout=0.1)
            except queue.Empty:
                continue
    finally:
        stop.set()
