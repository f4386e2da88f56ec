"""The grader side: run an assignment's checks under pytest, with the reference loaded here."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import pytest

from grader.harness.clients import ReferenceClient
from grader.harness.plugin import GraderPlugin
from grader.harness.student import load_module


def run_checks(
    assignment_dir: Path,
    reference_path: Path,
    make_student: Callable[[Callable[[], int]], object],
    submission_seed: int,
    deadline: float,
) -> dict[str, dict]:
    """Return {check id: {"status", "output"}} for every check that ran.

    The checks run in a private working directory holding the assignment's `data/` files (and
    whatever `student.put_file` places), so the reference reads the same files the student does.
    """
    probes = load_module(assignment_dir / "probes.py", "grader_probes")
    reference = load_module(reference_path, "grader_reference")
    plugin = GraderPlugin(None, None, submission_seed, deadline)
    plugin._reference = ReferenceClient(reference, probes, plugin.seeder)
    plugin._student = make_student(plugin.seeder)
    checks_dir = assignment_dir / "checks"
    args = [
        str(checks_dir),
        "-c", str(checks_dir / "pytest.ini") if (checks_dir / "pytest.ini").exists() else os.devnull,
        "--rootdir", str(checks_dir),
        "--import-mode=importlib",
        "-p", "no:cacheprovider",
        # The terminal reporter stays (its output goes nowhere): assertion rewriting needs it to
        # explain a failed `assert a == b, "message"`.
        # These two gc.collect() five times per session: 0.4 s with torch loaded, for nothing we use.
        "-p", "no:unraisableexception",
        "-p", "no:threadexception",
        "-W", "ignore",
    ]
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only our plugin: fast, and nothing else hooks in
    previous_cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="grader-checks-") as workdir:
        if (assignment_dir / "data").is_dir():
            shutil.copytree(assignment_dir / "data", workdir, dirs_exist_ok=True)
        os.chdir(workdir)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                pytest.main(args, plugins=[plugin])
        finally:
            os.chdir(previous_cwd)
            plugin._student.close()
    return plugin.results
