"""The report model (schema `grader.report/1`) and its renderings: JSON, text, HTML, Gradescope."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Literal

import jinja2
from pydantic import BaseModel, Field

SCHEMA_ID = "grader.report/1"

TestStatus = Literal["passed", "failed", "error", "timeout", "not_run"]
ReportStatus = Literal["graded", "rejected", "error"]


class TestResult(BaseModel):
    id: str
    name: str
    function: str = Field(description="the API function this check grades")
    score: float = Field(ge=0)
    max_score: float = Field(ge=0)
    status: TestStatus
    output: str = ""
    visibility: Literal["visible", "hidden"]


class Note(BaseModel):
    """Something about the submission itself: a skipped magic, a cell that raised, a syntax error."""

    kind: Literal["magic", "cell_error", "syntax_error", "import_error", "limit", "sandbox"]
    message: str
    cell: int | None = None
    line: int | None = None


class AssignmentRef(BaseModel):
    slug: str
    version: str


class RunEnvironment(BaseModel):
    grader: str
    torch: str
    python: str
    sandbox: str


class Report(BaseModel):
    schema_: Literal["grader.report/1"] = Field(SCHEMA_ID, alias="schema")
    submission_id: str
    assignment: AssignmentRef
    status: ReportStatus
    score: float
    max_score: float
    tests: list[TestResult]
    notes: list[Note] = []
    started_at: datetime
    finished_at: datetime
    execution_time: float = Field(ge=0, description="seconds")
    environment: RunEnvironment

    model_config = {"populate_by_name": True}

    def student_view(self) -> "Report":
        """The report as a student may see it: hidden checks keep their points, lose their output."""
        tests = [
            t.model_copy(update={"output": "(hidden check: details are shown to instructors only)"})
            if t.visibility == "hidden"
            else t
            for t in self.tests
        ]
        return self.model_copy(update={"tests": tests})

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)


def json_schema() -> dict:
    return Report.model_json_schema(by_alias=True)


def now() -> datetime:
    return datetime.now(timezone.utc)


def _fmt_points(value: float) -> str:
    return f"{value:g}"


_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("grader", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)
_templates.filters["points"] = _fmt_points


def render_text(report: Report) -> str:
    marks = {"passed": "PASS", "failed": "FAIL", "error": "ERR ", "timeout": "TIME", "not_run": "SKIP"}
    lines = [
        f"{report.assignment.slug} v{report.assignment.version}  submission {report.submission_id}",
        f"status: {report.status}   score: {_fmt_points(report.score)} / {_fmt_points(report.max_score)}"
        f"   ({report.execution_time:.2f} s, sandbox {report.environment.sandbox})",
    ]
    for note in report.notes:
        where = "".join(
            part for part in (
                f" cell {note.cell}" if note.cell is not None else "",
                f" line {note.line}" if note.line is not None else "",
            )
        )
        lines.append(f"note [{note.kind}{where}]: {note.message}")
    lines.append("")
    for test in report.tests:
        lines.append(
            f"[{marks[test.status]}] {_fmt_points(test.score):>4}/{_fmt_points(test.max_score):<4} "
            f"{test.function:<22} {test.name}" + ("  (hidden)" if test.visibility == "hidden" else "")
        )
        if test.status != "passed" and test.output:
            lines.extend("         " + line for line in test.output.splitlines()[:20])
    return "\n".join(lines) + "\n"


def render_html(report: Report, *, full_page: bool = True) -> str:
    return _templates.get_template("report.html").render(report=report, full_page=full_page)


def render_gradescope(report: Report) -> str:
    """Gradescope's results.json: https://gradescope-autograders.readthedocs.io/en/latest/specs/"""
    status_names = {"passed": "passed", "not_run": "failed", "error": "failed", "timeout": "failed", "failed": "failed"}
    payload = {
        "score": report.score,
        "execution_time": round(report.execution_time, 3),
        "output": f"{report.assignment.slug} v{report.assignment.version}: {report.status}",
        "stdout_visibility": "hidden",
        "tests": [
            {
                "name": f"{t.function}: {t.name}",
                "score": t.score,
                "max_score": t.max_score,
                "status": status_names[t.status],
                "output": t.output,
                "visibility": "visible" if t.visibility == "visible" else "after_published",
            }
            for t in report.tests
        ],
    }
    if report.notes:
        payload["output"] += "\n" + "\n".join(n.message for n in report.notes)
    return json.dumps(payload, indent=2)


RENDERERS = {
    "json": lambda r: r.to_json(),
    "text": render_text,
    "html": render_html,
    "gradescope": render_gradescope,
}
