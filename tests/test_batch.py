"""`grader batch`: a small class through real sandboxes, the gradebook it writes, re-runs and Ctrl-C.

The class runs against a copy of `maximize` with tight limits (GRADER_ASSIGNMENTS_DIR), so the
submission that loops forever at import costs a second, not a minute.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from grader import assignments
from grader.batch import Entry, Result, collect, grade_batch, source_hash
from grader.batch.output import canvas_csv
from grader.cli import main
from grader.intake import read_submission
from grader.sandbox.pool import SandboxPool

MAXIMIZE = assignments.get("maximize").directory
SOLUTION = (MAXIMIZE / "solutions" / "student_style.py").read_text()
LECTURE = (MAXIMIZE / "solutions" / "lecture.ipynb").read_bytes()
LIMITS = "[limits]\nprobe_timeout = 3\nimport_timeout = 1\ntotal_timeout = 10\n"
# The same code as SOLUTION, reworded in everything but the code itself.
DISGUISED = ('"""My own work, honest."""\n# imports\nimport   torch\n\n\n'
             + SOLUTION.replace("import torch\n", "").replace("\n", "\n\n").replace("    ", "        ")
             .replace("return 2 * (a - b) + c", "return 2*(a-b)+c  # the formula"))


def variant(old: str, new: str) -> str:
    assert old in SOLUTION
    return SOLUTION.replace(old, new)


# student -> (file name, contents, status, score)
CLASS = {
    "alice": ("alice.py", SOLUTION, "graded", 18),
    "bob": ("bob.ipynb", LECTURE, "graded", 18),
    "carol": ("carol.py", (MAXIMIZE / "samples" / "minimizes.py").read_text(), "graded", 9),
    "dave": ("dave.py", (MAXIMIZE / "samples" / "no_zero_grad.py").read_text(), "graded", 13),
    "erin": ("erin.py", DISGUISED, "graded", 18),
    "frank": ("frank.py", "def z_fn(a, b, c)\n    return 0\n", "error", 0),
    "grace": ("grace.py", b"# caf\xe9 au lait\n", "rejected", 0),
    "heidi": ("heidi.py", "while True:\n    pass\n", "timeout", 0),
    "ivan": ("ivan.py", variant("def grad_b(a, b, c):\n", "def grad_b(a, b, c):\n    import os; os._exit(3)\n"),
             "crashed", 16),
    "judy": ("judy.py", variant("def accumulated_grad(a, b, c, times):\n",
                                "def accumulated_grad(a, b, c, times):\n    hog = torch.empty(2**36)\n"),
             "out_of_memory", 16),
}


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """The environment for `grader` subprocesses: `maximize` with tight limits."""
    root = tmp_path_factory.mktemp("assignments")
    shutil.copytree(MAXIMIZE, root / "maximize")
    toml = root / "maximize" / "assignment.toml"
    text = toml.read_text()
    toml.write_text(text[:text.index("[limits]")] + LIMITS + "\n" + text[text.index("[[checks]]"):])
    return {**os.environ, "GRADER_ASSIGNMENTS_DIR": str(root)}


def write_class(directory: Path, members: dict) -> Path:
    directory.mkdir()
    for filename, content, *_ in members.values():
        path = directory / filename
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return directory


def batch(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", "batch", *args, "--assignment", "maximize"],
                          capture_output=True, text=True, timeout=300, env=env)


def gradebook(out: Path) -> dict[str, dict]:
    with (out / "gradebook.csv").open(newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def test_a_class_through_local_sandboxes(tmp_path, env):
    submissions = write_class(tmp_path / "class", CLASS)
    out = tmp_path / "out"
    result = batch(str(submissions), "--out", str(out), "--sandbox", "local", "--jobs", "2", env=env)
    assert result.returncode == 0, result.stderr

    rows = gradebook(out)
    assert {s: (r["status"], float(r["score"])) for s, r in rows.items()} == \
        {s: (status, score) for s, (_, _, status, score) in CLASS.items()}
    header = next(csv.reader((out / "gradebook.csv").open()))
    check_ids = [c.id for c in assignments.get("maximize").checks]
    assert header == ["student", "score", "max_score", "status", *check_ids, "message"]
    assert rows["carol"]["test_maximize_random_inputs"] == "0" and rows["carol"]["test_z_fn_lecture_values"] == "1"
    assert rows["ivan"]["test_grad_b_is_minus_two"] == "0" and rows["ivan"]["test_z_fn_lecture_values"] == "1"
    assert "not UTF-8" in rows["grace"]["message"]
    assert "SyntaxError" in rows["frank"]["message"]
    assert all(r["max_score"] == "18" for r in rows.values())

    for student in CLASS:
        report = json.loads((out / "reports" / f"{student}.json").read_text())
        assert report["score"] == CLASS[student][3]
        assert (out / "reports" / f"{student}.html").read_text().startswith("<!doctype html>")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["identical"] == [{"source_hash": summary["identical"][0]["source_hash"], "students": ["alice", "erin"]}]
    assert summary["status_counts"] == {"graded": 5, "rejected": 1, "error": 1, "out_of_memory": 1,
                                        "timeout": 1, "crashed": 1}
    assert summary["run"] == {**summary["run"], "graded": 10, "skipped": 0, "jobs": 2, "interrupted": False}
    by_check = {c["id"]: c for c in summary["checks"]}
    assert by_check["test_maximize_random_inputs"]["passed"] == 5 and by_check["test_maximize_random_inputs"]["total"] == 9
    html = (out / "summary.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    assert 'id="score-histogram"' in html and 'id="pass-rates"' in html
    assert "alice, erin" in html
    assert "identical" in result.stdout and "alice, erin" in result.stdout
    assert next(csv.reader((out / "canvas.csv").open())) == \
        ["Student", "ID", "SIS User ID", "Section", "An optimization loop that maximizes an output (maximize)"]

    # The same command again: everything is already graded, no sandbox starts.
    again = batch(str(submissions), "--out", str(out), "--sandbox", "local", "--jobs", "2", env=env)
    assert again.returncode == 0, again.stderr
    assert "10 of 10 already graded" in again.stderr
    assert json.loads((out / "summary.json").read_text())["run"]["graded"] == 0
    assert gradebook(out) == rows

    # A resubmission is graded again; the others are not.
    (submissions / "dave.py").write_text(SOLUTION.replace("import torch", "import torch  # fixed"))
    third = batch(str(submissions), "--out", str(out), "--sandbox", "local", env=env)
    assert third.returncode == 0, third.stderr
    run = json.loads((out / "summary.json").read_text())["run"]
    assert (run["graded"], run["skipped"], run["jobs"]) == (1, 9, 1)
    assert gradebook(out)["dave"]["score"] == "18"
    assert [g["students"] for g in json.loads((out / "summary.json").read_text())["identical"]] == \
        [["alice", "dave", "erin"]]


def test_ctrl_c_finishes_the_submission_in_progress_and_a_rerun_grades_the_rest(tmp_path, env):
    members = {"a": ("a.py", SOLUTION), "b": ("b.py", "while True:\n    pass\n"),
               "c": ("c.py", SOLUTION), "d": ("d.py", SOLUTION)}
    submissions = write_class(tmp_path / "class", members)
    out = tmp_path / "out"
    args = [sys.executable, "-m", "grader.cli", "batch", str(submissions), "--assignment", "maximize",
            "--out", str(out), "--sandbox", "local", "--jobs", "1"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not ((out / "gradebook.csv").exists() and "a" in gradebook(out)):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)  # b (a second of import timeout) is in its sandbox now
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "run the same command again" in stderr
    assert {s: r["status"] for s, r in gradebook(out).items()} == {"a": "graded", "b": "timeout"}

    rerun = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((out / "summary.json").read_text())["run"]["graded"] == 2
    assert {s: r["score"] for s, r in gradebook(out).items()} == {"a": "18", "b": "0", "c": "18", "d": "18"}


def test_a_zip_with_one_folder_per_student(tmp_path, env):
    archive = tmp_path / "hw1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("hw1/alice/maximize.py", SOLUTION)
        zf.writestr("hw1/alice/notes.txt", "scratch")
        zf.writestr("hw1/bob/Lecture.ipynb", LECTURE)
        zf.writestr("hw1/carol/a.py", SOLUTION)
        zf.writestr("hw1/carol/b.py", SOLUTION)
        zf.writestr("hw1/dave/answer.txt", "42")
        zf.writestr("__MACOSX/hw1/alice/._maximize.py", "junk")
    result = batch(str(archive), "--sandbox", "none", env=env)
    assert result.returncode == 0, result.stderr
    rows = gradebook(tmp_path / "hw1-graded")
    assert {s: (r["status"], r["score"]) for s, r in rows.items()} == {
        "alice": ("graded", "18"), "bob": ("graded", "18"), "carol": ("rejected", "0"), "dave": ("rejected", "0")}
    assert "several submissions for carol" in rows["carol"]["message"]
    assert "submit a Python module (.py) or a Jupyter notebook" in rows["dave"]["message"]


def test_unusable_path_and_unknown_assignment_exit_2(tmp_path):
    (tmp_path / "not-a-zip.zip").write_text("hello")
    (tmp_path / "empty").mkdir()
    for path, slug in [(tmp_path / "missing", "maximize"), (tmp_path / "not-a-zip.zip", "maximize"),
                       (tmp_path / "empty", "maximize"), (tmp_path, "no-such-assignment")]:
        result = CliRunner().invoke(main, ["batch", str(path), "--assignment", slug, "--sandbox", "none"])
        assert result.exit_code == 2 and result.stderr.startswith("grader: error:"), (path, result.output)


def test_id_pattern_reads_canvas_download_names(tmp_path):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    (submissions / "smithjane_1234_5678_maximize.py").write_text(SOLUTION)
    (submissions / "doejohn_LATE_42_99_maximize-1.ipynb").write_bytes(LECTURE)
    (submissions / "README.txt").write_text("downloaded from Canvas")
    entries, warnings = collect(submissions, r"^(?P<name>[a-z]+)(?:_LATE)?_(?P<id>\d+)_")
    assert [(e.student, e.name, e.filename) for e in entries] == [
        ("1234", "smithjane", "smithjane_1234_5678_maximize.py"), ("42", "doejohn", "doejohn_LATE_42_99_maximize-1.ipynb"),
        ("README", "README", "README.txt")]
    assert len(warnings) == 1 and "README" in warnings[0]
    results = [Result(student=e.student, name=e.name, filename=e.filename, slug="maximize", version="1", sha256="",
                      status="graded", score=18.0, max_score=18.0) for e in entries[:2]]
    assert canvas_csv(results, assignments.get("maximize"), "777").splitlines() == [
        "Student,ID,SIS User ID,Section,An optimization loop that maximizes an output (777)",
        "smithjane,1234,,,18", "doejohn,42,,,18"]


def test_source_hash_ignores_comments_whitespace_docstrings_and_outputs():
    def digest(text: str | bytes, name: str = "x.py") -> str:
        return source_hash(read_submission(text.encode() if isinstance(text, str) else text, name))

    assert digest(SOLUTION) == digest(DISGUISED)
    assert digest(SOLUTION) != digest(SOLUTION.replace("2 * (a - b) + c", "2 * (b - a) + c"))
    notebook = json.loads(LECTURE)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["different output\n"]}]
            cell["execution_count"] = 99
    assert digest(json.dumps(notebook).encode(), "n.ipynb") == digest(LECTURE, "lecture.ipynb")
    as_notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Homework"),
        nbformat.v4.new_code_cell(SOLUTION[:SOLUTION.index("def maximize")], outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="hello\n")]),
        nbformat.v4.new_code_cell("%matplotlib inline\n" + SOLUTION[SOLUTION.index("def maximize"):]),
    ])
    assert digest(nbformat.writes(as_notebook), "hw.ipynb") == digest(SOLUTION)


def test_stopping_a_batch_hands_out_only_complete_results():
    spec = assignments.get("maximize")
    entries = [Entry(f"s{n}", "s.py", SOLUTION.encode()) for n in range(4)]
    with SandboxPool("none", 1) as pool:
        stop = threading.Event()
        stop.set()
        assert list(grade_batch(entries, spec, pool, stop=stop)) == []
        stop = threading.Event()
        results = []
        for result in grade_batch(entries, spec, pool, jobs=1, stop=stop):
            stop.set()
            results.append(result)
        assert 1 <= len(results) < 4
        assert all(r.status == "graded" and r.score == 18 for r in results)
        plain = list(grade_batch([("t", "t.py", b"\xff")], spec, pool))
        assert [(r.student, r.status, r.report.status) for r in plain] == [("t", "rejected", "rejected")]
