"""Class statistics an instructor wants at a glance: summary.json, summary.html and a short table."""

from __future__ import annotations

import base64
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable

import numpy
from matplotlib.figure import Figure
from rich.table import Table

from grader.assignments import Assignment
from grader.batch.core import BATCH_STATUSES, Result, source_hash
from grader.batch.output import report_stem
from grader.intake import IntakeError, read_submission
from grader.report import _templates, now

SUMMARY_SCHEMA = "grader.batch-summary/1"
SLOWEST = 5


def starter_hash(assignment: Assignment) -> str | None:
    """The unchanged starter's source hash: students who all handed it in are not copying each other."""
    try:
        return source_hash(read_submission(assignment.starter_path.read_bytes(), assignment.starter_path.name))
    except (OSError, IntakeError):
        return None


def histogram_edges(max_score: float) -> list[float]:
    """One bin per point up to 30 points, else 20 bins."""
    bins = int(max_score) if 0 < max_score <= 30 and float(max_score).is_integer() else 20
    return numpy.linspace(0, max_score or 1, bins + 1).tolist()


def summarize(results: list[Result], assignment: Assignment, run: dict | None = None) -> dict:
    scores = [r.score for r in results]
    edges = histogram_edges(assignment.max_score)
    ran = [r for r in results if r.status != "rejected" and r.checks]
    checks = []
    for check in assignment.checks:
        passed = sum(r.checks.get(check.id, {}).get("status") == "passed" for r in ran)
        checks.append({"id": check.id, "name": check.name, "function": check.function, "points": check.points,
                       "visibility": check.visibility, "passed": passed, "total": len(ran),
                       "pass_rate": passed / len(ran) if ran else None})
    groups: dict[str, list[str]] = defaultdict(list)
    starter = starter_hash(assignment)
    for r in results:
        if r.source_hash and r.source_hash != starter:
            groups[r.source_hash].append(r.student)
    counts = Counter(r.status for r in results)
    return {
        "schema": SUMMARY_SCHEMA,
        "generated_at": now().isoformat(),
        "assignment": {"slug": assignment.slug, "version": assignment.version, "title": assignment.title,
                       "max_score": assignment.max_score},
        "run": run or {},
        "students": len(results),
        "status_counts": {s: counts[s] for s in BATCH_STATUSES if counts[s]},
        "scores": {
            "mean": statistics.fmean(scores) if scores else None,
            "median": statistics.median(scores) if scores else None,
            "stdev": statistics.pstdev(scores) if scores else None,
            "min": min(scores, default=None),
            "max": max(scores, default=None),
            "full_marks": sum(s == assignment.max_score for s in scores),
        },
        "histogram": {"edges": edges, "counts": numpy.histogram(scores, bins=edges)[0].tolist()},
        "checks": checks,
        "most_missed": [c["id"] for c in sorted((c for c in checks if c["total"]), key=lambda c: c["pass_rate"])
                        if c["pass_rate"] < 1][:3],
        "slowest": [{"student": r.student, "seconds": round(r.elapsed, 3), "status": r.status}
                    for r in sorted(results, key=lambda r: r.elapsed, reverse=True)[:SLOWEST] if r.elapsed >= 0.001],
        "identical": [{"source_hash": h, "students": sorted(students)}
                      for h, students in sorted(groups.items(), key=lambda kv: sorted(kv[1])) if len(students) > 1],
        "problems": [{"student": r.student, "status": r.status, "message": r.message}
                     for r in results if not r.ok],
    }


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def score_histogram(summary: dict) -> str:
    figure = Figure(figsize=(6, 3))
    axes = figure.subplots()
    edges, counts = summary["histogram"]["edges"], summary["histogram"]["counts"]
    axes.stairs(counts, edges, fill=True, color="#4c72b0")
    axes.set_xlabel(f"score (of {summary['assignment']['max_score']:g})")
    axes.set_ylabel("students")
    axes.yaxis.get_major_locator().set_params(integer=True)
    return _png(figure)


def pass_rate_chart(summary: dict) -> str:
    checks = [c for c in summary["checks"] if c["total"]]
    figure = Figure(figsize=(6, 0.35 * len(checks) + 1))
    axes = figure.subplots()
    rates = [100 * c["pass_rate"] for c in checks]
    axes.barh([c["id"].removeprefix("test_") for c in checks], rates,
              color=["#c44e52" if rate < 50 else "#dd8452" if rate < 100 else "#55a868" for rate in rates])
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of the class passing")
    return _png(figure)


def report_file(result: Result) -> str | None:
    """Where `grader batch` writes a student's HTML report, relative to summary.html (none when grading failed)."""
    return None if result.retry else f"reports/{report_stem(result.student)}.html"


def render_summary_html(summary: dict, results: list[Result],
                        report_url: Callable[[Result], str | None] = report_file) -> str:
    """`report_url` links each student to a report: a file beside the summary, or a page of the service."""
    plots = {"histogram": score_histogram(summary)}
    if any(c["total"] for c in summary["checks"]):
        plots["pass_rates"] = pass_rate_chart(summary)
    students = [{"result": r, "report": report_url(r)} for r in results]
    return _templates.get_template("summary.html").render(summary=summary, plots=plots, students=students)


def summary_table(summary: dict) -> Table:
    """The few lines printed at the end of a run."""
    scores = summary["scores"]
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("assignment", f"{summary['assignment']['slug']} v{summary['assignment']['version']}, "
                                f"{summary['students']} students")
    if scores["mean"] is not None:
        table.add_row("scores", f"mean {scores['mean']:.1f}, median {scores['median']:g}, "
                                f"min {scores['min']:g}, max {scores['max']:g} of {summary['assignment']['max_score']:g} "
                                f"({scores['full_marks']} full marks)")
    table.add_row("status", ", ".join(f"{n} {s}" for s, n in summary["status_counts"].items()))
    by_id = {c["id"]: c for c in summary["checks"]}
    if summary["most_missed"]:
        table.add_row("most missed", "; ".join(f"{i} ({100 * by_id[i]['pass_rate']:.0f}% pass)"
                                               for i in summary["most_missed"]))
    if summary["slowest"]:
        table.add_row("slowest", ", ".join(f"{s['student']} {s['seconds']:.1f} s" for s in summary["slowest"][:3]))
    for group in summary["identical"]:
        table.add_row("[yellow]identical[/]", ", ".join(group["students"]))
    return table
