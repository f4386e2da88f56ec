"""What a batch leaves in its output directory: state, gradebooks, per-student reports.

Every file is written to a temporary name and renamed into place, so an interrupted run
never leaves a half-written gradebook. (No fsync: that guards against power loss, not Ctrl-C
or a crash, and would cost milliseconds per submission on some disks.)
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from grader.assignments import Assignment
from grader.batch.core import Result, sha256
from grader.report import render_html

STATE_FILE = ".batch-state.json"
STATE_SCHEMA = "grader.batch-state/1"


def atomic_write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temp.open("wb") as handle:
        handle.write(content.encode("utf-8") if isinstance(content, str) else content)
    os.replace(temp, path)


class BatchState:
    """Results of earlier runs, by student, so a re-run grades only what changed."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / STATE_FILE
        self.records: dict[str, dict] = {}
        if self.path.exists():
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            if raw.get("schema") == STATE_SCHEMA:
                self.records = raw["students"]

    def reusable(self, student: str, sha256: str, assignment: Assignment) -> Result | None:
        """The earlier result, if it graded these very bytes against this assignment version."""
        record = self.records.get(student)
        if (record and not record["retry"] and record["sha256"] == sha256
                and record["slug"] == assignment.slug and record["version"] == assignment.version):
            return Result.from_record(record)
        return None

    def save(self, result: Result) -> None:
        self.records[result.student] = result.record()
        atomic_write(self.path, json.dumps({"schema": STATE_SCHEMA, "students": self.records}, indent=1))


def _points(value: float) -> str:
    return f"{value:g}"


def _csv(rows: Iterable[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def gradebook_csv(results: list[Result], assignment: Assignment) -> str:
    """student,score,max_score,status, one column of points per check (by id), then message."""
    ids = [c.id for c in assignment.checks]
    rows = [["student", "score", "max_score", "status", *ids, "message"]]
    for r in results:
        rows.append([r.student, _points(r.score), _points(r.max_score), r.status,
                     *(_points(r.checks.get(i, {}).get("score", 0.0)) for i in ids), r.message])
    return _csv(rows)


def canvas_csv(results: list[Result], assignment: Assignment, canvas_id: str | None = None) -> str:
    """Canvas's gradebook import layout; the score column is '<title> (<Canvas assignment id>)'."""
    column = f"{assignment.title} ({canvas_id or assignment.slug})"
    rows = [["Student", "ID", "SIS User ID", "Section", column]]
    rows += [[r.name or r.student, r.student, "", "", _points(r.score)] for r in results]
    return _csv(rows)


def report_stem(student: str) -> str:
    """A file name for a student id that may hold any character, distinct per id."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", student).lstrip(".") or "_"
    return safe if safe == student else f"{safe}-{sha256(student.encode())[:8]}"


def write_report(out_dir: Path, result: Result) -> None:
    stem = report_stem(result.student)
    atomic_write(out_dir / "reports" / f"{stem}.json", result.report.to_json())
    atomic_write(out_dir / "reports" / f"{stem}.html", render_html(result.report))


def write_gradebooks(out_dir: Path, results: list[Result], assignment: Assignment, canvas_id: str | None = None) -> None:
    atomic_write(out_dir / "gradebook.csv", gradebook_csv(results, assignment))
    atomic_write(out_dir / "canvas.csv", canvas_csv(results, assignment, canvas_id))
