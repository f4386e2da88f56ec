"""The Docker sandbox: real containers of the sandbox image, graded through `DockerSandbox`.

Skipped only when no Docker engine can run here (with a loud reason); under CI (CI=true) a
missing engine fails instead, because .ci/setup-docker.sh must have started one. When the
engine runs but the image for the current content is missing, the session builds it first.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grader import assignments
from grader.grading import grade_bytes
from grader.validate import expected_failures

pytestmark = pytest.mark.docker

SPEC = assignments.get("maximize")
SOLUTIONS = sorted(p for p in (SPEC.directory / "solutions").glob("*") if p.suffix in (".py", ".ipynb"))
EXPECTED = expected_failures(SPEC)
SAMPLES = sorted(p for p in SPEC.samples_dir.glob("*") if p.name in EXPECTED)

# A correct submission (the one the hostile suite uses), for submissions that also try something else.
CORRECT = (Path(__file__).parent / "submissions" / "good.py").read_text()

# Returns whatever it found through z_fn (which then fails its checks, showing the loot in the
# report); a correct z_fn only when it found nothing.
REPORT_THROUGH_Z_FN = textwrap.dedent("""
    _correct_z_fn = z_fn

    def z_fn(a, b, c):
        return " | ".join(FOUND) if FOUND else _correct_z_fn(a, b, c)
""")


def _require_engine() -> None:
    from grader.sandbox.docker import engine_running

    if engine_running():
        return
    reason = ("NO DOCKER ENGINE ANSWERS: the Docker sandbox tests did not run. "
              "Start one with `bash .ci/setup-docker.sh` (installs docker.io, starts dockerd, builds the image).")
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " Under CI an engine must run.")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_image() -> str:
    _require_engine()
    from grader.sandbox.image import build_image

    return build_image(echo=lambda line: print(line, flush=True))


@pytest.fixture(scope="module")
def box(docker_image):
    """One warm container, reused by the tests of this module as a pool would reuse it."""
    from grader.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(docker_image)
    yield sandbox
    sandbox.close()


def _grade(box, source: str | bytes, name: str = "submission.py"):
    data = source.encode() if isinstance(source, str) else source
    report = grade_bytes(data, name, SPEC, box)
    return report


def _summary(report) -> str:
    return "\n".join(f"{t.id}: {t.status} {t.output[:300]!r}" for t in report.tests if t.status != "passed") + \
        "\n" + "\n".join(f"note {n.kind}: {n.message[:300]}" for n in report.notes)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_score_full_marks(box, path: Path):
    report = _grade(box, path.read_bytes(), path.name)
    assert report.status == "graded", _summary(report)
    assert report.score == report.max_score, _summary(report)
    assert report.environment.sandbox == "docker"
    assert report.environment.torch.startswith("2.13.0")


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_fail_exactly_their_declared_checks(box, path: Path):
    report = _grade(box, path.read_bytes(), path.name)
    assert report.status == "graded", _summary(report)
    failed = {t.id for t in report.tests if t.status != "passed"}
    assert failed == EXPECTED[path.name], _summary(report)


def test_one_container_grades_many_submissions(box):
    container = box.container_id
    used = box.uses
    for path in [*SOLUTIONS, *SAMPLES][:4]:
        report = _grade(box, path.read_bytes(), path.name)
        assert report.status == "graded", _summary(report)
        assert box.healthy, box.diagnostics()
    assert box.uses == used + min(4, len(SOLUTIONS) + len(SAMPLES))
    assert box.container_id == container
    assert box.alive()


def test_reference_and_checks_are_unreadable_from_a_submission(box):
    snoop = textwrap.dedent("""
        import os

        FOUND = []
        SECRETS = [
            "/opt/grader/reference/maximize.py",
            "/opt/grader/assignments/maximize/checks/test_maximize.py",
            "/proc/1/root/opt/grader/reference/maximize.py",
            "/proc/1/root/opt/grader/assignments/maximize/checks/test_maximize.py",
        ]
        for path in SECRETS:
            try:
                with open(path) as handle:
                    FOUND.append(f"{path}: {handle.read()[:200]}")
            except OSError:
                pass
        for directory in ["/opt/grader/reference", "/opt/grader/assignments/maximize/checks"]:
            try:
                FOUND.append(f"{directory}: {os.listdir(directory)}")
            except OSError:
                pass
        # Any file a walk of /opt/grader finds in a reference or checks directory.
        for root, _, files in os.walk("/opt/grader"):
            if "/reference" in root or "/checks" in root:
                FOUND += [os.path.join(root, name) for name in files]
        # The control: probes.py is readable by design, so this code did run with file access.
        with open("/opt/grader/assignments/maximize/probes.py") as handle:
            PROBES_READ = "def z_fn" in handle.read()
    """) + CORRECT + REPORT_THROUGH_Z_FN + textwrap.dedent("""
        _correct_grad_b = grad_b

        def grad_b(a, b, c):
            return _correct_grad_b(a, b, c) if PROBES_READ else 0.0
    """)
    report = _grade(box, snoop, "snoop.py")
    assert report.status == "graded", _summary(report)
    results = {t.id: t for t in report.tests}
    assert results["test_grad_b_is_minus_two"].status == "passed", "the control failed: the snooping code did not run"
    assert results["test_z_fn_lecture_values"].status == "passed", \
        f"a submission read secrets: {results['test_z_fn_lecture_values'].output}"
    assert report.score == report.max_score, _summary(report)


def test_nothing_of_a_submission_survives_into_the_next(box):
    litter = CORRECT + textwrap.dedent("""
        import ctypes, os, time

        # Files everywhere the student uid can write, some where only their owner can look.
        os.makedirs("private/deeper", exist_ok=True)
        open("private/deeper/file", "w").write("x")
        os.chmod("private/deeper", 0)
        os.chmod("private", 0o500)
        for directory in ["/tmp", "/dev/shm"]:
            open(f"{directory}/left-behind", "w").write("x")
            os.makedirs(f"{directory}/sticky/inner", exist_ok=True)
            open(f"{directory}/sticky/inner/file", "w").write("x")
            os.chmod(f"{directory}/sticky", 0o1777)
            os.chmod(f"{directory}/sticky/inner", 0)
        # SysV IPC objects, which outlive their processes unless the sandbox prevents it.
        libc = ctypes.CDLL(None, use_errno=True)
        IPC_CREAT = 0o1000
        libc.shmget(0, 4096, IPC_CREAT | 0o666)
        libc.msgget(0, IPC_CREAT | 0o666)
        libc.semget(0, 1, IPC_CREAT | 0o666)
        # A process that tries to outlive the submission.
        if os.fork() == 0:
            os.setsid()
            while True:
                time.sleep(1)
    """)
    report = _grade(box, litter, "litter.py")
    assert report.status == "graded", _summary(report)
    assert box.healthy, f"cleaning up after the submission failed: {box.diagnostics()}"

    inspect = textwrap.dedent("""
        import os

        FOUND = []
        for directory in ["/tmp", "/dev/shm", "/dev/mqueue"]:
            FOUND += [f"{directory}/{name}" for name in os.listdir(directory) if f"{directory}/{name}" != os.getcwd()]
        FOUND += [f"workdir: {name}" for name in os.listdir(".")]
        for name in os.listdir("/proc"):
            try:
                if name.isdigit() and int(name) != os.getpid() and os.stat(f"/proc/{name}").st_uid == os.getuid():
                    FOUND.append(f"process {name}: {open(f'/proc/{name}/cmdline').read()!r}")
            except OSError:
                pass
        for kind in ["shm", "msg", "sem"]:
            FOUND += [f"sysv {kind}: {line}" for line in open(f"/proc/sysvipc/{kind}").read().splitlines()[1:]]
    """) + CORRECT + REPORT_THROUGH_Z_FN
    report = _grade(box, inspect, "inspect.py")
    results = {t.id: t for t in report.tests}
    assert results["test_z_fn_lecture_values"].status == "passed", \
        f"the previous submission left: {results['test_z_fn_lecture_values'].output}"
    assert report.score == report.max_score, _summary(report)


def test_container_is_removed_on_close(docker_image):
    import docker

    from grader.sandbox.docker import DockerSandbox

    sandbox = DockerSandbox(docker_image)
    container = sandbox.container_id
    client = docker.from_env()
    assert client.containers.get(container).status == "running"
    report = _grade(sandbox, SOLUTIONS[0].read_bytes(), SOLUTIONS[0].name)
    assert report.score == report.max_score, _summary(report)
    sandbox.close()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container)
    assert not sandbox.healthy


def test_container_goes_away_when_its_owner_is_killed(docker_image):
    import docker

    owner = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
                               "from grader.sandbox.docker import DockerSandbox\n"
                               "box = DockerSandbox(sys.argv[1])\n"
                               "print(box.container_id, flush=True)\n"
                               "time.sleep(600)\n", docker_image],
        stdout=subprocess.PIPE, text=True)
    try:
        container = owner.stdout.readline().strip()
        assert container, "the owner process did not start a sandbox"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    client = docker.from_env()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.api.inspect_container(container)
        except docker.errors.NotFound:
            return
        time.sleep(0.2)
    pytest.fail(f"container {container[:12]} outlived its killed owner by 60 s")


def test_stale_containers_of_dead_owners_are_reaped(docker_image):
    import docker

    from grader.sandbox.docker import LABEL, LABEL_OWNER, _owner_label, reap_stale_containers

    client = docker.from_env()
    dead = subprocess.Popen(["true"])
    dead.wait()
    common = dict(command=["sleep", "600"], detach=True, network_mode="none", labels={LABEL: "1"})
    stale = client.containers.run(docker_image, **{**common, "labels": {LABEL: "1", LABEL_OWNER: f"{socket.gethostname()}:{dead.pid}:1"}})
    live = client.containers.run(docker_image, **{**common, "labels": {LABEL: "1", LABEL_OWNER: _owner_label()}})
    try:
        assert reap_stale_containers(client) >= 1
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(stale.id)
        assert client.containers.get(live.id).status == "running"
    finally:
        for container in (stale, live):
            try:
                container.remove(force=True)
            except docker.errors.NotFound:
                pass


def test_engine_available_names_the_current_image(docker_image):
    from grader.sandbox import default_kind
    from grader.sandbox.docker import engine_available
    from grader.sandbox.image import build_image, image_ref

    current = build_image(echo=lambda line: None)  # a no-op unless the project changed since the session began
    engine_available.cache_clear()
    if "GRADER_IMAGE" not in os.environ:
        assert image_ref() == current
    assert engine_available()
    if "GRADER_SANDBOX" not in os.environ:
        assert default_kind() == "docker"
