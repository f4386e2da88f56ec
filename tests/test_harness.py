"""Harness features no shipped assignment leans on, on a tiny assignment made for the purpose:
data files for the student (`put_file`, `data/`), files surviving a restart, seeds per check,
and a check that raises for its own reasons (status `error`, not a student failure)."""

from __future__ import annotations

import os
import textwrap

import pytest

from grader import assignments
from grader.grading import grade_bytes
from grader.sandbox.pool import SandboxPool

SPEC = """
slug = "files"
title = "Files"
version = "1.0.0"
functions = ["read", "seeded"]

[limits]
probe_timeout = 2
import_timeout = 5
total_timeout = 30

[[checks]]
id = "test_put_file_reaches_the_student"
name = "put_file"
function = "read"
points = 1

[[checks]]
id = "test_put_file_survives_a_restart"
name = "restart"
function = "read"
points = 1

[[checks]]
id = "test_data_dir_is_in_the_working_directory"
name = "data/"
function = "read"
points = 1

[[checks]]
id = "test_both_sides_share_the_check_seed"
name = "seed"
function = "seeded"
points = 1

[[checks]]
id = "test_broken_check"
name = "a check with a bug"
function = "read"
points = 1
"""

PROBES = """
def read(submission, name):
    return submission.read(name)


def seeded(submission):
    return submission.seeded()


def hang(submission):
    while True:
        pass
"""

CHECKS = """
def test_put_file_reaches_the_student(student):
    student.put_file("secret.txt", b"inputs only the check knows")
    assert student.run("read", name="secret.txt") == "inputs only the check knows"


def test_put_file_survives_a_restart(student):
    from grader.harness.clients import StudentTimeout

    student.put_file("kept.txt", b"still here")
    try:
        student.run("hang")
    except StudentTimeout:
        pass
    assert student.run("read", name="kept.txt") == "still here", "put_file's file was lost in the restart"


def test_data_dir_is_in_the_working_directory(student, reference):
    assert student.run("read", name="table.csv") == reference.run("read", name="table.csv")


def test_both_sides_share_the_check_seed(student, reference, seed):
    got, want = student.run("seeded"), reference.run("seeded")
    assert got == want, f"student drew {got}, reference drew {want}"


def test_broken_check(student):
    raise KeyError("a bug in the check itself")
"""

SOLUTION = """
import torch


def read(name):
    with open(name) as handle:
        return handle.read()


def seeded():
    return torch.rand(3).tolist()
"""


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    root = tmp_path_factory.mktemp("harness")
    directory = root / "assignments" / "files"
    (directory / "checks").mkdir(parents=True)
    (directory / "data").mkdir()
    (directory / "assignment.toml").write_text(SPEC)
    (directory / "probes.py").write_text(PROBES)
    (directory / "checks" / "test_files.py").write_text(CHECKS)
    (directory / "data" / "table.csv").write_text("x,y\n1,2\n")
    (root / "reference").mkdir()
    reference = root / "reference" / "files.py"
    reference.write_text(SOLUTION)
    os.environ.update(GRADER_ASSIGNMENTS_DIR=str(root / "assignments"), GRADER_REFERENCE_DIR=str(root / "reference"))
    yield assignments.get("files")
    del os.environ["GRADER_ASSIGNMENTS_DIR"], os.environ["GRADER_REFERENCE_DIR"]


@pytest.mark.parametrize("kind", ["local", "none"])
def test_files_seeds_and_check_errors(spec, kind):
    with SandboxPool(kind, 1) as pool, pool.sandbox() as box:
        report = grade_bytes(textwrap.dedent(SOLUTION).encode(), "files.py", spec, box)
    status = {t.id: t.status for t in report.tests}
    assert status.pop("test_broken_check") == "error"
    assert set(status.values()) == {"passed"}, [t.output for t in report.tests if t.status != "passed"]
    broken = next(t for t in report.tests if t.id == "test_broken_check")
    assert "the check itself failed" in broken.output and broken.score == 0


def test_a_wrong_seed_use_is_caught(spec):
    unseeded = SOLUTION.replace("return torch.rand(3).tolist()",
                                "return torch.rand(3, generator=torch.Generator().manual_seed(1)).tolist()")
    with SandboxPool("local", 1) as pool, pool.sandbox() as box:
        report = grade_bytes(unseeded.encode(), "files.py", spec, box)
    assert {t.id for t in report.tests if t.status == "failed"} == {"test_both_sides_share_the_check_seed"}
