"""The work queue: Huey carries job ids from the web process to workers; the store holds the jobs.

SqliteHuey in the data directory by default (its workers run inside `grader serve`), RedisHuey
when GRADER_REDIS_URL is set (any number of `grader worker` processes on any machines share it).
A message is only a job id: losing or repeating one is harmless, because a worker first claims
the job in the store, and a job that is not queued there any more is skipped.

A worker process keeps a pool of warm sandboxes, one Huey consumer thread per concurrent
grade, and a heartbeat row in the store. At start-up it enqueues every queued job again and
re-queues the running jobs of dead workers; it looks for dead workers again on every heartbeat.
Given an `OutboxSender`, it also sends the LMS outbox from a thread of its own.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from huey import Huey, RedisHuey, SqliteHuey

from grader import assignments
from grader.grading import grade_bytes
from grader.intake import IntakeError
from grader.sandbox import SandboxError
from grader.sandbox.pool import SandboxPool
from grader.store import Store, Worker, utcnow

if TYPE_CHECKING:
    from grader.lms_sender import OutboxSender

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
# A worker on another host is taken for dead when its heartbeat is this old (on this host its pid tells).
STALE_AFTER = timedelta(seconds=60)


def make_huey(data_dir: Path, redis_url: str | None) -> Huey:
    if redis_url:
        return RedisHuey("grader", url=redis_url, results=False)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    return SqliteHuey("grader", filename=str(Path(data_dir) / "queue.db"), results=False)


class GradingQueue:
    """Enqueues jobs (any process) and runs them (a process that has started a `GradingWorker`)."""

    def __init__(self, store: Store, huey: Huey) -> None:
        self.store = store
        self.huey = huey
        self._task = huey.task(name="grade")(self._run)
        self._worker: GradingWorker | None = None

    def enqueue(self, job_id: int) -> None:
        self._task(job_id)

    def attach(self, worker: GradingWorker) -> None:
        """Grade this process's deliveries of the task with `worker`."""
        self._worker = worker

    def depth(self) -> int:
        """Messages waiting in the queue (duplicates included)."""
        return self.huey.pending_count()

    def _run(self, job_id: int) -> None:
        if self._worker is None:
            raise RuntimeError("this process has no sandboxes to grade with")
        self._worker.grade(job_id)


class GradingWorker:
    """One worker process: `run()` warms the sandboxes and consumes the queue until SIGINT or SIGTERM.

    SIGINT stops gracefully (running grades finish); after SIGTERM the jobs still running are
    re-queued by the next worker to start."""

    def __init__(self, queue: GradingQueue, *, sandbox: str, threads: int = 1, pool_size: int | None = None,
                 outbox: OutboxSender | None = None) -> None:
        self.queue = queue
        self.outbox = outbox
        self.store = queue.store
        self.sandbox_kind = sandbox
        self.threads = threads
        self.pool_size = pool_size or threads
        self.host = socket.gethostname()
        self.id = f"{self.host}:{os.getpid()}:{secrets.token_hex(4)}"
        self.pool: SandboxPool | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        with SandboxPool(self.sandbox_kind, self.pool_size) as pool:
            self.pool = pool
            self.store.register_worker(self.id, host=self.host, pid=os.getpid(), sandbox=self.sandbox_kind,
                                       pool_size=self.pool_size)
            self.queue.attach(self)
            for job_id in self.store.queued_job_ids():
                self.queue.enqueue(job_id)
            self.recover()
            heartbeat = threading.Thread(target=self._beat, name="grader-heartbeat", daemon=True)
            heartbeat.start()
            if self.outbox is not None:
                threading.Thread(target=self.outbox.run, args=(self._stopping,), name="grader-lms-outbox",
                                 daemon=True).start()
            consumer = self.queue.huey.create_consumer(
                workers=self.threads, worker_type="thread", periodic=False,
                # SQLite is polled: keep the wait between polls short, so a student waits for grading only.
                initial_delay=0.02, backoff=1.2, max_delay=0.1,
            )
            log.info("worker %s: %d thread(s), %d warm %s sandbox(es)", self.id, self.threads, self.pool_size,
                     self.sandbox_kind)
            try:
                consumer.run()
            finally:
                self._stopping.set()
                self.store.stop_worker(self.id)

    def grade(self, job_id: int) -> None:
        claimed = self.store.claim(job_id, self.id)
        if claimed is None:
            return  # another delivery of the same message got there first, or the job is finished
        started = time.monotonic()
        try:
            spec = assignments.get(claimed.assignment)
            with self.pool.sandbox() as box:
                # Intake enforced the size cap when the submission was accepted.
                report = grade_bytes(claimed.content, claimed.filename, spec, box,
                                     submission_id=claimed.submission_id, max_bytes=len(claimed.content))
        except (IntakeError, assignments.UnknownAssignment) as exc:
            self.store.fail(job_id, self.id, str(exc), time.monotonic() - started)
        except SandboxError:
            log.exception("job %d (submission %s): no sandbox", job_id, claimed.submission_id)
            self.store.fail(job_id, self.id, "no sandbox could be started to grade this submission; submit it again"
                            " later", time.monotonic() - started)
        except Exception:
            log.exception("job %d (submission %s) failed", job_id, claimed.submission_id)
            self.store.fail(job_id, self.id, "the grader failed on this submission (the details are in its log)",
                            time.monotonic() - started)
        else:
            self.store.finish(job_id, self.id, report, time.monotonic() - started)

    def recover(self) -> None:
        for job_id in self.store.requeue_orphans(self._is_dead):
            log.warning("job %d was held by a worker that died: queued again", job_id)
            self.queue.enqueue(job_id)

    def _is_dead(self, worker: Worker) -> bool:
        if worker.id == self.id:
            return False
        if worker.stopped_at is not None:
            return True
        if worker.host == self.host and not _pid_alive(worker.pid):
            return True
        return utcnow() - worker.heartbeat_at > STALE_AFTER

    def _beat(self) -> None:
        while not self._stopping.wait(HEARTBEAT_SECONDS):
            try:
                self.store.heartbeat(self.id)
                self.recover()
            except Exception:
                log.exception("heartbeat failed")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
