"""Shared fixtures: real services on loopback (PostgreSQL, Redis) and real `grader` processes."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    """Poll until `predicate` returns something truthy; fail the test, saying `what`, if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL 15 server of this session on a loopback port; each call of `new_database` gets a fresh database.

    initdb refuses to run as root, so as root the cluster belongs to `nobody`."""
    if not (POSTGRES_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 is not installed ({POSTGRES_BIN}/initdb missing: apt-get install postgresql-15)")
    root = tempfile.mkdtemp(prefix="grader-pg-")
    as_user: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    data, port = os.path.join(root, "data"), free_port()
    run = lambda *args: subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)  # noqa: E731
    made = run(str(POSTGRES_BIN / "initdb"), "-D", data, "-U", "grader", "--auth=trust", "-E", "UTF8")
    if made.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed, no PostgreSQL for this session: {made.stderr[-500:]}")
    started = run(str(POSTGRES_BIN / "pg_ctl"), "-D", data, "-l", os.path.join(root, "log"), "-w", "-t", "60",
                  "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    if started.returncode != 0:
        log = Path(root, "log").read_text(errors="replace") if Path(root, "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {started.stderr[-300:]} {log[-500:]}")
    try:
        yield f"postgresql+psycopg2://grader@127.0.0.1:{port}"
    finally:
        run(str(POSTGRES_BIN / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def new_database(postgres_url) -> Callable[[], str]:
    """Make an empty database on the session's server and return its URL."""
    import psycopg2

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        connection = psycopg2.connect(postgres_url.replace("postgresql+psycopg2", "postgresql") + "/postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        connection.close()
        return f"{postgres_url}/{name}"
    return make


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A redis-server of this session on a loopback port, without persistence."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    import redis

    port, workdir = free_port(), tempfile.mkdtemp(prefix="grader-redis-")
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"

    def answers() -> bool:
        try:
            return redis.Redis.from_url(url).ping()
        except redis.ConnectionError:
            return False
    try:
        wait_for(answers, 30, "redis-server to answer")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class GraderProcess:
    """A running `grader serve` or `grader worker`, its output in a log file."""

    process: subprocess.Popen
    log_path: Path
    url: str | None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 180, path: str = "/readyz") -> None:
        """Wait until `path` answers 200 (/healthz: the server is up; /readyz: it can also grade)."""
        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"the grader exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                return requests.get(f"{self.url}{path}", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False
        wait_for(ready, timeout, f"{self.url}{path}", interval=0.25)

    def stop(self, signum: int = signal.SIGINT, timeout: float = 60) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class GraderSite:
    """One installation of the service: a data directory and the environment its commands run with."""

    data_dir: Path
    env: dict[str, str]
    processes: list[GraderProcess] = field(default_factory=list)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "grader.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=120)

    def token(self, role: str, name: str) -> str:
        """A new token, read from where `grader token create` promises it: alone on the last line of stdout."""
        result = self.run("token", "create", "--role", role, "--name", name)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip().splitlines()[-1]

    def start(self, command: str, *args: str) -> GraderProcess:
        """Start `grader serve` (on a free loopback port) or `grader worker`, with `args`."""
        url = None
        if command == "serve":
            port = free_port()
            args = ("--host", "127.0.0.1", "--port", str(port), *args)
            url = f"http://127.0.0.1:{port}"
        log_path = self.data_dir.parent / f"{command}-{len(self.processes)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "grader.cli", command, *args], env=self.env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started = GraderProcess(process, log_path, url)
        self.processes.append(started)
        return started

    def stop(self) -> None:
        for started in self.processes:
            started.stop()


@pytest.fixture(scope="session")
def grader_site(tmp_path_factory) -> Iterator[Callable[..., GraderSite]]:
    """Make a `GraderSite`: grader_site(GRADER_DATABASE_URL=..., ...) sets its environment on top of the defaults.

    Processes still running at the end of the session are stopped; a module stops its own with `site.stop()`."""
    sites: list[GraderSite] = []

    def make(**env: str) -> GraderSite:
        root = tmp_path_factory.mktemp("site")
        data_dir = root / "data"
        base = {k: v for k, v in os.environ.items() if not k.startswith("GRADER_")}
        site = GraderSite(data_dir, {**base, "GRADER_DATA_DIR": str(data_dir), **env})
        sites.append(site)
        return site
    yield make
    for site in sites:
        site.stop()
