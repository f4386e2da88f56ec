"""Hostile submissions through real sandboxes: none earns a point it did not earn by returning
the right values, and the sandbox grades the next submission normally.

Run through every launcher that can run here: `local` always; `docker` where an engine and
the image are available (in CI they must be).
"""

from __future__ import annotations

import os
import shutil
import socket
import textwrap
from pathlib import Path

import pytest

from grader import assignments
from grader.grading import grade_bytes
from grader.sandbox.pool import SandboxPool

HERE = Path(__file__).parent
GOOD = (HERE / "submissions" / "good.py").read_text()
WRONG = (HERE / "submissions" / "wrong.py").read_text()
FULL = 18.0
# Points `wrong.py` earns: its floats are rightly "detached" in the two detachment checks.
WRONG_SCORE = 2.0
POINTS = {"z_fn": 3.0, "grad_b": 2.0, "sgd_step": 5.0, "maximize": 6.0, "accumulated_grad": 2.0}
LIMITS = "[limits]\nprobe_timeout = 2\nimport_timeout = 4\ntotal_timeout = 25\nmemory_mb = 512\npids = 64\n"


def _launchers() -> list:
    params = [pytest.param("local", id="local")]
    try:
        from grader.sandbox.docker import engine_available
    except ImportError:
        def engine_available() -> bool:
            return False

    reason = "no Docker engine or sandbox image here (run `grader build-image`)"
    if not engine_available() and os.environ.get("CI") != "true":
        params.append(pytest.param("docker", id="docker", marks=pytest.mark.skip(reason=reason)))
    else:
        params.append(pytest.param("docker", id="docker", marks=pytest.mark.docker))
    return params


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    """`maximize` with tight limits, so timeouts cost seconds, not minutes. The limits travel with
    each job, so the docker sandbox keeps the image built from the real assignments."""
    from grader.sandbox.image import image_ref

    os.environ["GRADER_IMAGE"] = image_ref()
    root = tmp_path_factory.mktemp("assignments")
    source = assignments.get("maximize").directory
    shutil.copytree(source, root / "maximize")
    toml = root / "maximize" / "assignment.toml"
    text = toml.read_text()
    start, end = text.index("[limits]"), text.index("[[checks]]")
    toml.write_text(text[:start] + LIMITS + "\n" + text[end:])
    os.environ["GRADER_ASSIGNMENTS_DIR"] = str(root)
    yield assignments.get("maximize")
    del os.environ["GRADER_ASSIGNMENTS_DIR"], os.environ["GRADER_IMAGE"]


@pytest.fixture(scope="module", params=_launchers())
def pool(request, spec):
    with SandboxPool(request.param, 1) as pool:
        yield pool


@pytest.fixture
def grade(pool, spec):
    """Grade source text in the module's sandbox (replaced by the pool if a submission broke it)."""
    def run(source: str, filename: str = "hostile.py"):
        with pool.sandbox() as box:
            return grade_bytes(source.encode(), filename, spec, box)
    return run


def lost(report) -> dict[str, float]:
    by_function: dict[str, float] = {}
    for test in report.tests:
        by_function[test.function] = by_function.get(test.function, 0.0) + test.max_score - test.score
    return {k: v for k, v in by_function.items() if v}


def statuses(report) -> dict[str, str]:
    return {t.id: t.status for t in report.tests}


def test_good_and_wrong_score_as_expected(grade):
    assert grade(GOOD).score == FULL
    assert grade(WRONG).score == WRONG_SCORE


def test_os_exit_at_import_earns_nothing(grade):
    report = grade(GOOD + "\nimport os\nos._exit(0)\n")
    assert report.status == "graded" and report.score == 0
    assert all(t.status == "failed" and "died" in t.output for t in report.tests)


def test_sys_exit_at_import_stops_the_module_there(grade):
    report = grade("import sys\nsys.exit(0)\n" + GOOD)
    assert report.score == 0
    assert any(n.kind == "cell_error" and "SystemExit" in n.message for n in report.notes)
    assert grade(GOOD + "\nimport sys\nsys.exit(3)\n").score == FULL  # what was defined still counts


def test_exception_at_import_is_reported_with_its_line(grade):
    report = grade("x = 1\nraise RuntimeError('boom')\n" + GOOD)
    assert report.score == 0
    (note,) = [n for n in report.notes if n.kind == "cell_error"]
    assert note.line == 2 and "boom" in note.message


def test_monkeypatching_the_student_process_changes_nothing(grade):
    patches = """
    import builtins, math, torch, numpy, pytest
    torch.allclose = lambda *a, **k: True
    torch.isclose = lambda *a, **k: torch.tensor(True)
    numpy.allclose = lambda *a, **k: True
    math.isclose = lambda *a, **k: True
    pytest.approx = lambda *a, **k: 0.0
    builtins.abs = lambda x: 0
    builtins.AssertionError = type("AssertionError", (Exception,), {})
    try:
        import grader.harness.compare as compare
        compare.assert_scalar_close = lambda *a, **k: None
        compare.scalar = lambda *a, **k: 3.0
    except Exception:
        pass
    """
    report = grade(textwrap.dedent(patches) + WRONG)
    assert statuses(report) == statuses(grade(WRONG))
    assert report.score == WRONG_SCORE


def test_fake_reports_on_stdout_and_in_every_writable_place_are_ignored(grade):
    fake = """
    import json, os, sys
    perfect = {"schema": "grader.report/1", "status": "graded", "score": 18, "max_score": 18, "tests": []}
    text = json.dumps(perfect)
    print(text); print(text, file=sys.stderr)
    os.write(1, text.encode()); os.write(2, text.encode())
    written = 0
    for top in ["/", "/tmp", os.getcwd(), os.path.expanduser("~"), "/dev/shm", "/var/tmp", "/opt", "/work", "/run"]:
        for dirpath, dirnames, _ in os.walk(top):
            if written > 2000:
                break
            for name in ("report.json", "results.json"):
                try:
                    with open(os.path.join(dirpath, name), "w") as handle:
                        handle.write(text)
                    written += 1
                except OSError:
                    pass
            dirnames[:] = dirnames[:20]
    """
    report = grade(textwrap.dedent(fake) + WRONG)
    assert report.score == WRONG_SCORE
    assert grade(GOOD).score == FULL


def test_garbage_on_its_own_channel_only_fails_itself(grade):
    forger = """
    import os
    for fd in range(3, 64):
        try:
            os.write(fd, b"\\x00\\x00\\x00\\x10" + b'{"score": 18.0} ')
        except OSError:
            pass
    """
    report = grade(textwrap.dedent(forger) + GOOD)
    assert report.status == "graded" and report.score == 0
    assert grade(GOOD).score == FULL


def test_os_exit_inside_one_probe_fails_only_that_function(grade):
    source = GOOD.replace("def z_fn(a, b, c):\n", "def z_fn(a, b, c):\n    import os; os._exit(0)\n")
    report = grade(source)
    assert lost(report) == {"z_fn": POINTS["z_fn"]}
    assert report.score == FULL - POINTS["z_fn"]


def test_probe_timeout_fails_only_that_check_and_restarts_the_student(grade):
    source = GOOD.replace("def grad_b(a, b, c):\n", "def grad_b(a, b, c):\n    while True: pass\n")
    report = grade(source)
    assert statuses(report)["test_grad_b_is_minus_two"] == "timeout"
    assert lost(report) == {"grad_b": POINTS["grad_b"]}


def test_import_timeout_fails_every_check_once(grade):
    report = grade("while True:\n    pass\n" + GOOD)
    assert report.score == 0
    assert report.tests[0].status == "timeout"
    assert all(t.status in ("failed", "timeout") for t in report.tests)
    assert report.execution_time < 15  # the 4 s import limit is paid once, not once per check


def test_total_time_limit_leaves_every_check_in_the_report(grade):
    slow = GOOD.replace("import torch\n", "import torch, time\n").replace("    return", "    time.sleep(1.5)\n    return")
    report = grade(slow)
    assert [t.id for t in report.tests] == [c.id for c in assignments.get("maximize").checks]
    assert {"not_run", "timeout"} & set(statuses(report).values())
    assert report.score < FULL


def test_syntax_error_is_graded_zero_with_status_error(grade):
    report = grade("def z_fn(a, b, c)\n    return 1\n")
    assert report.status == "error" and report.score == 0
    assert report.notes[-1].kind == "syntax_error" and report.notes[-1].line == 1
    assert all(t.status == "not_run" for t in report.tests)


def test_reference_checks_and_harness_are_out_of_reach(grade, spec):
    targets = [str(spec.reference_path), str(next(spec.checks_dir.glob("test_*.py"))),
               "/opt/grader/reference/maximize.py", "/opt/grader/assignments/maximize/checks/test_maximize.py"]
    probe = f"""
    import os
    import grader.harness.plugin as plugin
    STOLEN = []
    for path in {targets!r}:
        try:
            STOLEN.append(open(path).read())
        except OSError:
            pass
    try:
        with open(plugin.__file__, "a") as handle:
            handle.write("# tampered")
        STOLEN.append("tampered")
    except OSError:
        pass
    """
    source = textwrap.dedent(probe) + GOOD.replace("    return 2 * (a - b) + c", "    return 999.0 if STOLEN else 2 * (a - b) + c")
    report = grade(source)
    assert report.score == FULL, [t.output for t in report.tests if t.status != "passed"]


def test_no_network(grade):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        source = f"""
        import socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=1).close()
            CONNECTED = True
        except OSError:
            CONNECTED = False
        """
        report = grade(textwrap.dedent(source) + GOOD.replace("    return 2 * (a - b) + c",
                                                               "    return 999.0 if CONNECTED else 2 * (a - b) + c"))
    assert report.score == FULL


def test_signals_to_every_pid_and_the_parent_harm_nothing(grade):
    source = """
    import os, signal
    for target in (os.getppid(), 1, -1):
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                os.kill(int(name), signal.SIGKILL)
            except OSError:
                pass
    """
    assert grade(textwrap.dedent(source) + GOOD).score == FULL
    assert grade(GOOD).score == FULL


def test_fork_bomb_is_capped(grade):
    source = """
    import os, time
    try:
        while True:
            if os.fork() == 0:
                time.sleep(600)
                os._exit(0)
    except OSError:
        pass
    """
    assert grade(textwrap.dedent(source) + GOOD).score == FULL
    assert grade(GOOD).score == FULL


def test_memory_hog_fails_only_its_function(grade):
    source = GOOD.replace("def z_fn(a, b, c):\n", "def z_fn(a, b, c):\n    hog = bytearray(6 * 1024 ** 3)\n")
    report = grade(source)
    assert lost(report) == {"z_fn": POINTS["z_fn"]}
    assert "MemoryError" in report.tests[0].output


def test_disk_fill_and_output_flood_cost_nothing(grade):
    source = """
    import os, sys
    try:
        with open("/tmp/fill", "wb") as handle:
            while True:
                handle.write(b"x" * (1 << 20))
    except OSError:
        pass
    chunk = "y" * (1 << 20)
    for _ in range(100):
        sys.stdout.write(chunk)
    """
    assert grade(textwrap.dedent(source) + GOOD).score == FULL


def test_leftovers_cannot_reach_the_next_submission(grade):
    """A detached process and files left behind: the next submissions score exactly as alone."""
    saboteur = """
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for _ in range(600):
                for path in ("/tmp/sabotage", os.path.join(os.getcwd(), "torch.py")):
                    try:
                        with open(path, "w") as handle:
                            handle.write("raise SystemExit")
                    except OSError:
                        pass
                time.sleep(0.05)
            os._exit(0)
        os._exit(0)
    with open("numpy.py", "w") as handle:
        handle.write("raise SystemExit")
    """
    assert grade(textwrap.dedent(saboteur) + WRONG).score == WRONG_SCORE
    assert grade(GOOD).score == FULL
    assert grade(WRONG).score == WRONG_SCORE
    leftover = """
    import os
    FOUND = os.path.exists("/tmp/sabotage") or os.path.exists("numpy.py") or os.path.exists("torch.py")
    """
    report = grade(textwrap.dedent(leftover) + GOOD.replace("    return 2 * (a - b) + c",
                                                            "    return 999.0 if FOUND else 2 * (a - b) + c"))
    assert report.score == FULL


def test_notebook_cell_errors_are_skipped_not_fatal(grade, spec):
    report = grade((spec.directory / "solutions" / "lecture.ipynb").read_text(), "lecture.ipynb")
    assert report.score == FULL
    assert {n.kind for n in report.notes} >= {"magic", "syntax_error"}
