"""`--sandbox none`: the submission runs in this very process. For writing checks, never for students."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import time

from grader import assignments
from grader.harness.clients import InProcessStudent
from grader.harness.runner import run_checks
from grader.harness.student import execute_cells, load_module


class InProcessSandbox:
    kind = "none"
    healthy = True

    def grade(self, job: dict) -> dict:
        spec = assignments.get(job["slug"])
        workdir = tempfile.mkdtemp(prefix="grader-none-")
        if spec.data_dir.is_dir():
            shutil.copytree(spec.data_dir, workdir, dirs_exist_ok=True)
        previous_cwd = os.getcwd()
        previous_main = sys.modules.get("__main__")
        module_name = f"grader_submission_{job['submission_id']}"
        try:
            os.chdir(workdir)
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                module, notes = execute_cells(job["cells"], module_name)
            probes = load_module(spec.probes_path, f"grader_probes_{job['submission_id']}")
            results = run_checks(
                spec.directory, spec.reference_path,
                lambda seeder: InProcessStudent(module, probes, seeder, job["limits"]["probe_timeout"]),
                job["seed"], time.monotonic() + job["limits"]["total_timeout"],
            )
        finally:
            os.chdir(previous_cwd)
            sys.modules.pop(module_name, None)
            if previous_main is not None:
                sys.modules["__main__"] = previous_main
            shutil.rmtree(workdir, ignore_errors=True)
        return {"results": results, "notes": notes, "error": None, "clean": True}

    def close(self) -> None:
        pass
