"""`grader validate`: prove an assignment's checks against known answers, through a real sandbox.

- the reference must score full marks;
- every file in `solutions/` (correct submissions, e.g. the lecture's own code) must score full marks;
- every known-wrong file in `samples/` must fail exactly the checks `samples/expected.toml` declares;
- the starter notebook must score 0 without a sandbox or harness error.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from grader.assignments import Assignment
from grader.grading import grade_bytes
from grader.report import Report
from grader.sandbox.pool import SandboxPool


@dataclass
class Outcome:
    slug: str
    subject: str
    expectation: str
    score: str
    ok: bool
    problem: str = ""


def expected_failures(spec: Assignment) -> dict[str, set[str]]:
    path = spec.samples_dir / "expected.toml"
    if not path.exists():
        return {}
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return {name: set(entry["fails"]) for name, entry in raw.items()}


def _failed(report: Report) -> set[str]:
    return {t.id for t in report.tests if t.status != "passed"}


def _grade_file(path: Path, spec: Assignment, pool: SandboxPool) -> Report:
    with pool.sandbox() as box:
        return grade_bytes(path.read_bytes(), path.name, spec, box)


def _full_marks(slug: str, subject: str, report: Report) -> Outcome:
    bad = sorted(_failed(report))
    return Outcome(slug, subject, "full marks", f"{report.score:g}/{report.max_score:g}",
                   report.status == "graded" and not bad,
                   "" if not bad else "failed: " + "; ".join(f"{t.id}: {t.output.splitlines()[0] if t.output else t.status}"
                                                             for t in report.tests if t.id in bad))


def validate_assignment(spec: Assignment, pool: SandboxPool) -> list[Outcome]:
    """Grade every known answer of one assignment."""
    outcomes = []
    declared = expected_failures(spec)
    known_ids = {c.id for c in spec.checks}
    subjects = [("reference", spec.reference_path)]
    subjects += [(f"solutions/{p.name}", p) for p in sorted((spec.directory / "solutions").glob("*")) if p.suffix in (".py", ".ipynb")]
    samples = sorted(p for p in spec.samples_dir.glob("*") if p.suffix in (".py", ".ipynb")) if spec.samples_dir.is_dir() else []
    for subject, path in subjects:
        outcomes.append(_full_marks(spec.slug, subject, _grade_file(path, spec, pool)))
    for path in samples:
        subject = f"samples/{path.name}"
        if path.name not in declared:
            outcomes.append(Outcome(spec.slug, subject, "declared", "-", False, "not declared in samples/expected.toml"))
            continue
        want = declared[path.name]
        if unknown := want - known_ids:
            outcomes.append(Outcome(spec.slug, subject, "declared", "-", False, f"declares unknown checks {sorted(unknown)}"))
            continue
        report = _grade_file(path, spec, pool)
        got = _failed(report)
        problems = []
        if missed := sorted(want - got):
            problems.append(f"should fail but passed: {', '.join(missed)}")
        if extra := sorted(got - want):
            problems.append(f"should pass but failed: {', '.join(extra)}")
        if report.status != "graded":
            problems.append(f"status {report.status}")
        outcomes.append(Outcome(spec.slug, subject, f"fails {len(want)}", f"{report.score:g}/{report.max_score:g}",
                                not problems, "; ".join(problems)))
    for name in sorted(set(declared) - {p.name for p in samples}):
        outcomes.append(Outcome(spec.slug, f"samples/{name}", "declared", "-", False, "declared but the file is missing"))
    if spec.starter_path.exists():
        report = _grade_file(spec.starter_path, spec, pool)
        harness_errors = [t.id for t in report.tests if t.status == "error"]
        ok = report.status == "graded" and report.score == 0 and not harness_errors
        outcomes.append(Outcome(spec.slug, "starter.ipynb", "0 points", f"{report.score:g}/{report.max_score:g}", ok,
                                "" if ok else f"status {report.status}, errors in {harness_errors}"))
    else:
        outcomes.append(Outcome(spec.slug, "starter.ipynb", "0 points", "-", False, "missing"))
    return outcomes
