"""Workers and the queue: dead workers' jobs come back at start-up, and a killed service loses nothing."""

from __future__ import annotations

import os
import signal
import socket
from datetime import timedelta
from pathlib import Path

import requests
from sqlalchemy import update

from conftest import wait_for
from grader.queue import STALE_AFTER, GradingQueue, GradingWorker, make_huey
from grader.store import Store, Worker, utcnow

GOOD = Path(__file__).parent / "submissions" / "good.py"


def dead_pid() -> int:
    """A pid no process has: a child that has exited and been reaped."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_recovery_requeues_only_the_jobs_of_dead_workers(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/grader.db")
    queue = GradingQueue(store, make_huey(tmp_path, None))
    host = socket.gethostname()
    workers = {
        "same-host-dead": (host, dead_pid(), timedelta(0)),
        "same-host-alive": (host, os.getpid(), timedelta(0)),
        "other-host-silent": ("elsewhere", 1, STALE_AFTER * 2),
        "other-host-beating": ("elsewhere", 1, timedelta(0)),
    }
    jobs = {}
    for name, (worker_host, pid, silence) in workers.items():
        store.register_worker(name, host=worker_host, pid=pid, sandbox="none", pool_size=1)
        with store.engine.begin() as connection:
            connection.execute(update(Worker).where(Worker.id == name).values(heartbeat_at=utcnow() - silence))
        jobs[name] = store.add_submission(submission_id=name, assignment="maximize", filename="a.py",
                                          content=b"x = 1\n", origin="api", token_id=None)
        store.claim(jobs[name], name)
    GradingWorker(queue, sandbox="none").recover()
    assert {name: store.job_status(job) for name, job in jobs.items()} == {
        "same-host-dead": "queued", "same-host-alive": "running",
        "other-host-silent": "queued", "other-host-beating": "running",
    }
    assert queue.depth() == 2


def test_a_job_running_when_the_service_was_killed_is_graded_after_restart(grader_site):
    site = grader_site()
    token = site.token("student", "alice")
    slow = b"import time\ntime.sleep(4)\n" + GOOD.read_bytes()
    first = site.start("serve", "--sandbox", "none", "--workers", "1")
    first.wait_ready()
    response = requests.post(f"{first.url}/api/v1/assignments/maximize/submissions",
                             files={"file": ("slow.py", slow)}, headers={"Authorization": f"Bearer {token}"},
                             timeout=60)
    assert response.status_code == 202
    submission = response.json()

    def status(url: str) -> str:
        return requests.get(f"{url}/api/v1/submissions/{submission['id']}",
                            headers={"Authorization": f"Bearer {token}"}, timeout=30).json()["status"]
    wait_for(lambda: status(first.url) == "running", 60, "the job to start")
    first.stop(signal.SIGKILL)

    second = site.start("serve", "--sandbox", "none", "--workers", "1")
    second.wait_ready()
    wait_for(lambda: status(second.url) == "done", 120, "the re-queued job to finish")
    store = Store(f"sqlite:///{site.data_dir}/grader.db")
    job = store.submission(submission["id"]).job
    store.close()
    assert job.attempts == 2 and job.report.score == 18
    assert "queued again" in second.log()
    site.stop()
