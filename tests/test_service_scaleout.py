"""Scale-out: PostgreSQL and Redis, `grader serve` without workers, separate `grader worker` processes."""

from __future__ import annotations

from pathlib import Path

import requests

from conftest import wait_for
from grader.store import Store

GOOD = Path(__file__).parent / "submissions" / "good.py"


def test_separate_workers_share_a_redis_queue_and_a_postgres_store(grader_site, new_database, redis_url):
    database = new_database()
    site = grader_site(GRADER_DATABASE_URL=database, GRADER_REDIS_URL=redis_url)
    headers = {"Authorization": f"Bearer {site.token('student', 'alice')}"}
    server = site.start("serve")  # with Redis, serve runs no workers of its own
    server.wait_ready(path="/healthz")
    not_ready = requests.get(f"{server.url}/readyz", timeout=30)
    assert not_ready.status_code == 503 and not_ready.json()["checks"] == {
        "database": True, "queue": True, "workers": False}

    def post(wait: float = 0) -> requests.Response:
        return requests.post(f"{server.url}/api/v1/assignments/maximize/submissions?wait={wait}",
                             files={"file": ("good.py", GOOD.read_bytes())}, headers=headers, timeout=120)
    early = [post().json()["id"] for _ in range(3)]  # stored and queued while no worker runs

    workers = [site.start("worker", "--sandbox", "none") for _ in range(2)]
    server.wait_ready()
    assert post(wait=90).json()["score"] == 18

    def all_done() -> bool:
        return all(requests.get(f"{server.url}/api/v1/submissions/{i}", headers=headers, timeout=30)
                   .json()["status"] == "done" for i in early)
    wait_for(all_done, 120, "the submissions queued before any worker started")
    store = Store(database)
    jobs = [store.submission(i).job for i in early]
    store.close()
    assert {job.attempts for job in jobs} == {1} and {job.report.score for job in jobs} == {18}
    assert requests.get(f"{server.url}/metrics", timeout=30).text.count('grader_jobs{status="done"} 4.0') == 1
    for worker in workers:
        assert worker.process.poll() is None, worker.log()
    site.stop()
