"""One submission through intake, a sandbox and into a report: the function everything else calls."""

from __future__ import annotations

import platform
import secrets
import uuid

from grader import __version__
from grader.assignments import Assignment
from grader.intake import DEFAULT_MAX_BYTES, Submission, read_submission
from grader.report import AssignmentRef, Note, Report, RunEnvironment, TestResult, now
from grader.sandbox import Sandbox


def new_submission_id() -> str:
    return uuid.uuid4().hex[:16]


def grade_bytes(
    data: bytes,
    filename: str,
    assignment: Assignment,
    sandbox: Sandbox,
    *,
    submission_id: str | None = None,
    seed: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Report:
    """Grade uploaded bytes; raises `grader.intake.IntakeError` for input that cannot be graded."""
    submission = read_submission(data, filename, max_bytes)
    return grade_submission(submission, assignment, sandbox, submission_id=submission_id, seed=seed)


def grade_submission(
    submission: Submission,
    assignment: Assignment,
    sandbox: Sandbox,
    *,
    submission_id: str | None = None,
    seed: int | None = None,
) -> Report:
    submission_id = submission_id or new_submission_id()
    started = now()
    notes = list(submission.notes)
    syntax_errors = submission.syntax_errors()
    if submission.kind == "py" and syntax_errors:
        outcome = {"results": {}, "notes": [], "error": None}
        status_reason = "not run: the submission has a syntax error"
        notes += syntax_errors
    else:
        job = {
            "submission_id": submission_id,
            "slug": assignment.slug,
            "kind": submission.kind,
            "cells": [{"number": c.number, "source": c.source} for c in submission.cells],
            "seed": secrets.randbits(62) if seed is None else seed,
            "limits": assignment.limits.model_dump(),
        }
        outcome = sandbox.grade(job)
        status_reason = f"not run: {outcome['error']}" if outcome.get("error") else "not run"
        notes += [Note(**n) for n in outcome.get("notes", [])]
        if outcome.get("error"):
            notes.append(Note(kind="sandbox", message=outcome["error"]))
    tests = []
    for check in assignment.checks:
        result = outcome["results"].get(check.id, {"status": "not_run", "output": status_reason})
        tests.append(TestResult(
            id=check.id, name=check.name, function=check.function, max_score=check.points,
            score=check.points if result["status"] == "passed" else 0.0,
            status=result["status"], output=result["output"], visibility=check.visibility,
        ))
    finished = now()
    errored = (submission.kind == "py" and syntax_errors) or bool(outcome.get("error"))
    return Report(
        submission_id=submission_id,
        assignment=AssignmentRef(slug=assignment.slug, version=assignment.version),
        status="error" if errored else "graded",
        score=sum(t.score for t in tests),
        max_score=assignment.max_score,
        tests=tests,
        notes=notes,
        started_at=started,
        finished_at=finished,
        execution_time=(finished - started).total_seconds(),
        environment=RunEnvironment(grader=__version__, sandbox=sandbox.kind, **_sandbox_versions(sandbox)),
    )


def _sandbox_versions(sandbox: Sandbox) -> dict:
    """Versions as the sandbox reported them at warm-up (the host need not import torch)."""
    info = getattr(sandbox, "info", {})
    if "torch" not in info:
        import torch

        info = {"torch": torch.__version__, "python": platform.python_version()}
    return {"torch": info["torch"], "python": info["python"]}
