"""The store on SQLite (WAL) and on a real PostgreSQL: tokens, submissions, exclusive claims, recovery, numbers."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grader.report import AssignmentRef, Report, RunEnvironment, now
from grader.auth import hash_secret
from grader.store import MAX_ATTEMPTS, Job, Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = f"sqlite:///{tmp_path}/grader.db" if request.param == "sqlite" else request.getfixturevalue("new_database")()
    opened = Store(url)
    yield opened
    opened.close()


def report_for(submission_id: str, score: float = 3.0) -> Report:
    return Report(
        submission_id=submission_id, assignment=AssignmentRef(slug="maximize", version="1"), status="graded",
        score=score, max_score=18, tests=[], started_at=now(), finished_at=now(), execution_time=0.5,
        environment=RunEnvironment(grader="0", torch="2", python="3.11", sandbox="none"),
    )


def add(store: Store, submission_id: str = "s1", token_id: int | None = None) -> int:
    return store.add_submission(submission_id=submission_id, assignment="maximize", filename="a.py",
                                content=b"x = 1\n", origin="api", token_id=token_id)


def test_tokens_are_stored_hashed_and_can_be_revoked(store):
    token = store.add_token("alice", "student", "grd_secret")
    with store.engine.connect() as connection:
        stored = connection.execute(text("SELECT secret_hash FROM tokens")).scalar()
    assert stored == hash_secret("grd_secret") and "grd_secret" not in stored
    assert store.token_for_secret("grd_secret").name == "alice"
    assert store.token_for_secret("grd_other") is None
    assert store.revoke_token(token.id) and not store.revoke_token(token.id)
    assert store.token_for_secret("grd_secret") is None and store.token(token.id) is None
    with pytest.raises(ValueError):
        store.add_token("x", "admin", "grd_x")


def test_a_submission_is_kept_byte_for_byte_with_a_queued_job(store):
    token = store.add_token("alice", "student", "grd_a")
    job_id = add(store, token_id=token.id)
    found = store.submission("s1")
    assert found.job.id == job_id and found.job.status == "queued" and found.submitted_by == "alice"
    assert found.sha256 == hashlib.sha256(b"x = 1\n").hexdigest()
    assert store.submission_content("s1") == b"x = 1\n" and found.size == 6
    assert [s.id for s in store.submissions(token_id=token.id)] == ["s1"]
    assert store.submissions(token_id=token.id + 1) == []
    assert store.queued_job_ids() == [job_id]


def test_only_one_of_many_workers_claims_a_job(store):
    job_id = add(store)
    for name in ("w1", "w2", "w3", "w4"):
        store.register_worker(name, host="h", pid=1, sandbox="none", pool_size=1)
    barrier, claims = threading.Barrier(4), []

    def claim(worker_id):
        barrier.wait()
        claims.append(store.claim(job_id, worker_id))
    threads = [threading.Thread(target=claim, args=(w,)) for w in ("w1", "w2", "w3", "w4")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and won[0].content == b"x = 1\n" and won[0].assignment == "maximize"
    job = store.submission("s1").job
    assert job.status == "running" and job.attempts == 1
    assert store.claim(job_id, "w1") is None


def test_a_submission_never_has_two_jobs_queued_or_running(store):
    job_id = add(store)
    with pytest.raises(IntegrityError), Session(store.engine) as session:
        session.add(Job(submission_id="s1"))
        session.commit()
    store.register_worker("w1", host="h", pid=1, sandbox="none", pool_size=1)
    store.claim(job_id, "w1")
    store.finish(job_id, "w1", report_for("s1"), 0.1)
    with Session(store.engine) as session:
        session.add(Job(submission_id="s1"))  # a regrade, once the first job is over
        session.commit()


def test_a_finished_job_keeps_its_report_and_only_its_worker_may_finish_it(store):
    job_id = add(store)
    store.register_worker("w1", host="h", pid=1, sandbox="none", pool_size=1)
    store.register_worker("w2", host="h", pid=2, sandbox="none", pool_size=1)
    store.claim(job_id, "w1")
    assert not store.finish(job_id, "w2", report_for("s1"), 0.4)
    assert store.finish(job_id, "w1", report_for("s1"), 0.4)
    job = store.submission("s1").job
    assert job.status == "done" and job.report.score == 3.0 and job.seconds == pytest.approx(0.4)
    assert not store.fail(job_id, "w1", "late", 1.0)
    assert store.job_counts() == {"queued": 0, "running": 0, "done": 1, "failed": 0}
    assert store.grade_durations([0.25, 1.0]) == ([0, 1], 1, pytest.approx(0.4))


def test_jobs_of_dead_workers_are_queued_again_then_failed_after_max_attempts(store):
    job_id = add(store)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        store.register_worker(f"dead{attempt}", host="h", pid=attempt, sandbox="none", pool_size=1)
        assert store.claim(job_id, f"dead{attempt}") is not None
        requeued = store.requeue_orphans(lambda worker: worker.id.startswith("dead"))
        if attempt < MAX_ATTEMPTS:
            assert requeued == [job_id] and store.job_status(job_id) == "queued"
    assert requeued == [] and store.job_status(job_id) == "failed"
    assert "stopped while grading" in store.submission("s1").job.error


def test_jobs_of_live_workers_are_left_alone(store):
    job_id = add(store)
    store.register_worker("alive", host="h", pid=1, sandbox="none", pool_size=1)
    store.claim(job_id, "alive")
    assert store.requeue_orphans(lambda worker: False) == []
    assert store.job_status(job_id) == "running"


def test_live_workers_are_those_with_a_recent_heartbeat_and_not_stopped(store):
    store.register_worker("w1", host="h", pid=1, sandbox="none", pool_size=1)
    store.register_worker("w2", host="h", pid=2, sandbox="none", pool_size=1)
    store.stop_worker("w2")
    assert store.live_workers(timedelta(seconds=30)) == 1
    store.heartbeat("w1")
    assert store.live_workers(timedelta(seconds=-1)) == 0
    assert store.ping()
