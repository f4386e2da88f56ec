"""The `grader` command."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader import assignments
from grader.intake import IntakeError
from grader.report import RENDERERS
from grader.sandbox import SANDBOX_KINDS, SandboxError

sandbox_option = click.option(
    "--sandbox", type=click.Choice(SANDBOX_KINDS), envvar="GRADER_SANDBOX", default=None,
    help="Where submissions run: docker, local (host processes) or none (in-process, for check authors). "
         "Default: docker when an engine and the image are there, else local.",
)


def fail(message: str) -> None:
    """Unusable input: one line on stderr, exit status 2."""
    click.echo(f"grader: error: {message}", err=True)
    sys.exit(2)


def resolve_sandbox(kind: str | None) -> str:
    from grader.sandbox import default_kind

    return kind or default_kind()


@click.group()
@click.version_option(package_name="grader")
def main() -> None:
    """Grade PyTorch exercises in a sandbox against reference solutions."""


@main.command()
@click.argument("submission", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--assignment", "slug", required=True, help="Assignment slug (see `grader assignments`).")
@sandbox_option
@click.option("--format", "fmt", type=click.Choice(sorted(RENDERERS)), default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here instead of stdout.")
@click.option("--student-view", is_flag=True, help="Redact hidden checks' output, as students see it.")
@click.option("--seed", type=int, default=None, help="Fix the secret input seed (for reproducing a report).")
def grade(submission: Path, slug: str, sandbox: str | None, fmt: str, out: Path | None,
          student_view: bool, seed: int | None) -> None:
    """Grade one SUBMISSION (.py or .ipynb) and print its report."""
    from grader.grading import grade_bytes
    from grader.sandbox import open_sandbox

    try:
        spec = assignments.get(slug)
    except assignments.UnknownAssignment as exc:
        fail(str(exc))
    if not submission.is_file():
        fail(f"{submission}: no such file")
    data = submission.read_bytes()
    try:
        box = open_sandbox(resolve_sandbox(sandbox))
    except SandboxError as exc:
        fail(str(exc))
    try:
        report = grade_bytes(data, submission.name, spec, box, seed=seed)
    except IntakeError as exc:
        fail(str(exc))
    finally:
        box.close()
    if student_view:
        report = report.student_view()
    rendered = RENDERERS[fmt](report)
    if out:
        out.write_text(rendered, encoding="utf-8")
        click.echo(f"{report.assignment.slug}: {report.score:g}/{report.max_score:g} ({report.status}) -> {out}", err=True)
    else:
        click.echo(rendered, nl=not rendered.endswith("\n"))


@main.command()
@click.argument("slugs", nargs=-1)
@sandbox_option
def validate(slugs: tuple[str, ...], sandbox: str | None) -> None:
    """Prove assignments' checks: reference and solutions score full marks, each known-wrong
    sample fails exactly its declared checks, the starter scores 0. Exits 1 on any mismatch."""
    from rich.console import Console
    from rich.table import Table

    from grader.sandbox.pool import SandboxPool
    from grader.validate import validate_assignment

    try:
        specs = [assignments.get(slug) for slug in slugs] or list(assignments.all_assignments().values())
    except assignments.UnknownAssignment as exc:
        fail(str(exc))
    table = Table("assignment", "subject", "expected", "score", "result", "problem")
    ok = True
    try:
        with SandboxPool(resolve_sandbox(sandbox), 1) as pool:
            for spec in specs:
                for outcome in validate_assignment(spec, pool):
                    ok &= outcome.ok
                    table.add_row(outcome.slug, outcome.subject, outcome.expectation, outcome.score,
                                  "[green]ok[/]" if outcome.ok else "[red]MISMATCH[/]", outcome.problem)
    except SandboxError as exc:
        fail(str(exc))
    Console(width=200).print(table)
    sys.exit(0 if ok else 1)


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--assignment", "slug", required=True, help="Assignment slug (see `grader assignments`).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Sandboxes grading in parallel. Default: as many as cores and memory allow.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory (default: PATH-graded beside PATH). Re-runs resume from its state.")
@sandbox_option
@click.option("--id-pattern", default=None,
              help="Regex finding the student id in file or folder names: group `id` (or the first group), "
                   "optional group `name`. Default: the whole name.")
@click.option("--canvas-id", default=None, help="Canvas assignment id for canvas.csv's score column (default: the slug).")
def batch(path: Path, slug: str, jobs: int | None, out: Path | None, sandbox: str | None,
          id_pattern: str | None, canvas_id: str | None) -> None:
    """Grade a class: PATH is a directory or zip with one file or one folder per student.
    Writes DIR/gradebook.csv, canvas.csv, reports/, summary.json and summary.html (see docs/batch.md)."""
    from grader.batch import CollectError
    from grader.batch.command import run_batch

    try:
        spec = assignments.get(slug)
        sys.exit(run_batch(path, spec, resolve_sandbox(sandbox), jobs=jobs, out=out,
                           id_pattern=id_pattern, canvas_id=canvas_id))
    except (assignments.UnknownAssignment, CollectError, SandboxError) as exc:
        fail(str(exc))


@main.command(name="assignments")
def list_assignments() -> None:
    """List the assignments this grader knows."""
    for spec in assignments.all_assignments().values():
        click.echo(f"{spec.slug:<18} v{spec.version:<7} {spec.max_score:>5g} pts  {len(spec.checks):>2} checks  {spec.title}")


@main.command(name="build-image")
@click.option("--force", is_flag=True, help="Rebuild even when the image for the current content exists.")
@click.option("--base", default=None, envvar="GRADER_IMAGE_BASE",
              help="Base image with python3 3.11 and venv (default: Debian bookworm made here with debootstrap).")
def build_image_command(force: bool, base: str | None) -> None:
    """Build the Docker sandbox image, tagged with the hash of its content (a no-op when it exists)."""
    from grader.sandbox.image import BuildError, build_image

    try:
        ref = build_image(force=force, base=base, echo=click.echo)
    except BuildError as exc:
        click.echo(f"grader: error: {exc}", err=True)
        sys.exit(1)
    click.echo(ref)


from grader.app.commands import register as register_service_commands  # noqa: E402  (needs sandbox_option)

register_service_commands(main, sandbox_option)


if __name__ == "__main__":
    main()
