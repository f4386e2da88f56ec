"""The `grader` command line as a user runs it: real processes, real sandboxes, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from grader.report import json_schema

ROOT = Path(__file__).resolve().parent.parent
MAXIMIZE = ROOT / "assignments" / "maximize"
GOOD = Path(__file__).parent / "submissions" / "good.py"


def grader(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_grade_prints_only_the_json_report_and_exits_0_whatever_the_score():
    result = grader("grade", str(MAXIMIZE / "samples" / "no_zero_grad.py"), "--assignment", "maximize",
                    "--sandbox", "local", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, json_schema())
    failed = {t["id"] for t in report["tests"] if t["status"] != "passed"}
    assert failed == {"test_maximize_lecture_values", "test_maximize_random_inputs"}
    assert report["environment"]["sandbox"] == "local"


def test_grade_text_html_and_gradescope_to_a_file(tmp_path):
    for fmt, check in [("text", lambda s: "score: 18 / 18" in s),
                       ("html", lambda s: s.startswith("<!doctype html>") and 'id="score"' in s),
                       ("gradescope", lambda s: json.loads(s)["score"] == 18)]:
        out = tmp_path / f"report.{fmt}"
        result = grader("grade", str(GOOD), "--assignment", "maximize", "--sandbox", "none", "--format", fmt,
                        "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        assert check(out.read_text()), fmt


def test_student_view_redacts_hidden_output():
    args = ["grade", str(MAXIMIZE / "samples" / "no_zero_grad.py"), "--assignment", "maximize", "--sandbox", "none",
            "--format", "json"]
    full, student = json.loads(grader(*args).stdout), json.loads(grader(*args, "--student-view").stdout)
    hidden = "test_maximize_random_inputs"
    output = {r: next(t["output"] for t in doc["tests"] if t["id"] == hidden) for r, doc in [("full", full), ("student", student)]}
    assert "zero_grad" in output["full"] and "zero_grad" not in output["student"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grade", str(GOOD), "--assignment", "nope"], "unknown assignment 'nope'"),
        (["grade", "/no/such/file.py", "--assignment", "maximize"], "no such file"),
        (["grade", str(MAXIMIZE / "assignment.toml"), "--assignment", "maximize", "--sandbox", "none"],
         "submit a Python module (.py) or a Jupyter notebook"),
    ],
)
def test_unusable_input_exits_2_with_one_line(args, message):
    result = grader(*args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_bad_notebook_exits_2(tmp_path):
    bad = tmp_path / "broken.ipynb"
    bad.write_text('{"cells": [], "nbformat": 4')
    result = grader("grade", str(bad), "--assignment", "maximize", "--sandbox", "none")
    assert result.returncode == 2 and "not valid JSON" in result.stderr


def test_assignments_lists_maximize():
    result = grader("assignments")
    assert result.returncode == 0
    assert any(line.startswith("maximize") and "18 pts" in line for line in result.stdout.splitlines())


def test_validate_fails_when_a_sample_is_declared_wrong(tmp_path):
    copy = tmp_path / "maximize"
    shutil.copytree(MAXIMIZE, copy)
    expected = copy / "samples" / "expected.toml"
    expected.write_text(expected.read_text().replace('fails = ["test_maximize_lecture_values", "test_maximize_random_inputs"]',
                                                     'fails = ["test_maximize_lecture_values"]'))
    result = grader("validate", "maximize", "--sandbox", "none", env={"GRADER_ASSIGNMENTS_DIR": str(tmp_path),
                                                                      "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "should pass but failed: test_maximize_random_inputs" in result.stdout


def test_validate_every_assignment_through_the_local_sandbox():
    """The reference and solutions score full marks, each sample fails exactly what it declares."""
    result = grader("validate", "--sandbox", "local")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MISMATCH" not in result.stdout
