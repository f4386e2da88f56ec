"""The pytest plugin the grader process runs the checks with.

Fixtures for checks:
- `student`: `student.run("probe_name", **inputs)` runs `probes.probe_name(submission, **inputs)`
  in the student process and returns its data; `student.put_file(name, bytes)`.
- `reference`: the same `run` on the reference solution, in this process.
- `seed`: this check's seed (from the submission's secret seed and the check's id).
- `rng`: a `numpy.random.Generator` seeded with it, for generating inputs.

Each check's outcome is recorded as passed / failed / error / timeout / not_run with a message
meant for the student.
"""

from __future__ import annotations

import hashlib
import time

import numpy
import pytest

from grader.harness.clients import HarnessError, StudentError, StudentTimeout, TotalTimeout
from grader.harness.student import seed_everything


def check_seed(submission_seed: int, check_id: str) -> int:
    digest = hashlib.sha256(f"{submission_seed}:{check_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class GraderPlugin:
    def __init__(self, student, reference, submission_seed: int, deadline: float):
        self._student = student
        self._reference = reference
        self.submission_seed = submission_seed
        self.deadline = deadline
        self.current_seed = 0
        self.results: dict[str, dict] = {}
        self.out_of_time = False

    def seeder(self) -> int:
        return self.current_seed

    @pytest.fixture
    def student(self):
        return self._student

    @pytest.fixture
    def reference(self):
        return self._reference

    @pytest.fixture
    def seed(self) -> int:
        return self.current_seed

    @pytest.fixture
    def rng(self) -> numpy.random.Generator:
        return numpy.random.default_rng(self.current_seed)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        self.current_seed = check_seed(self.submission_seed, item.name)
        seed_everything(self.current_seed)
        if self.out_of_time or time.monotonic() > self.deadline:
            self.out_of_time = True
            pytest.skip("not run: the submission's total time limit was reached")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.results[item.name] = self._outcome(call)

    def _outcome(self, call) -> dict:
        if call.excinfo is None:
            return {"status": "passed", "output": ""}
        exc = call.excinfo.value
        if call.excinfo.errisinstance(pytest.skip.Exception):
            return {"status": "not_run", "output": str(getattr(exc, "msg", exc))}
        if isinstance(exc, TotalTimeout):
            self.out_of_time = True
            return {"status": "timeout", "output": str(exc)}
        if isinstance(exc, StudentTimeout):
            return {"status": "timeout", "output": str(exc)}
        if isinstance(exc, HarnessError):
            return {"status": "error", "output": str(exc)}
        if isinstance(exc, StudentError):
            return {"status": "failed", "output": str(exc)}
        if isinstance(exc, AssertionError):
            return {"status": "failed", "output": _assertion_message(call.excinfo)}
        return {"status": "error", "output": f"the check itself failed: {call.excinfo.exconly()[:2000]}"}


def _assertion_message(excinfo) -> str:
    message = str(excinfo.value)
    # Keep the check's own message; drop pytest's rewritten "assert x == y" explanation under it.
    head = message.split("\nassert ")[0].strip()
    return (head or excinfo.exconly())[:4000]
