"""The service's database: tokens, submissions (with their bytes), jobs, reports and workers.

SQLAlchemy 2 over SQLite (WAL) in the data directory by default, or PostgreSQL from
`GRADER_DATABASE_URL`. Every `Store` method is one short transaction, so request threads,
worker threads and separate processes share the database without sharing sessions.

A submission is what was handed in, kept byte for byte; a job is one attempt to grade it (a
regrade or a batch adds jobs without touching the submission, and an LMS delivery can point at
the submission it reports on); a report is what a finished job produced. Job state lives here,
not in the queue: the queue only carries job ids, a job is claimed by one conditional UPDATE,
and a submission has at most one job queued or running, so it is never graded twice at once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import PurePosixPath

from sqlalchemy import (
    JSON, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, TypeDecorator, case, create_engine,
    event, func, select, text, update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import (
    DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload, sessionmaker,
)

from grader.auth import ROLES, hash_secret
from grader.report import Report

JOB_STATUSES = ("queued", "running", "done", "failed")
FINISHED = ("done", "failed")
# A job whose worker died this many times is failed rather than re-queued: the submission may be what kills them.
MAX_ATTEMPTS = 3


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite hands back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}


class Token(Base):
    """An API token: only the SHA-256 of its secret is kept (secrets are long and random)."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class Worker(Base):
    """A worker process, so that jobs it held when it died can be found and graded again."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    sandbox: Mapped[str] = mapped_column(String(20))
    pool_size: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]


class Submission(Base):
    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    assignment: Mapped[str] = mapped_column(String(100), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    origin: Mapped[str] = mapped_column(String(20), doc="how it arrived: api or web")
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    token: Mapped[Token | None] = relationship(lazy="joined")
    jobs: Mapped[list[Job]] = relationship(back_populates="submission", order_by="Job.id")

    @property
    def job(self) -> Job:
        """The latest attempt at grading: the one whose state and report the submission shows."""
        return self.jobs[-1]

    @property
    def submitted_by(self) -> str | None:
        return self.token.name if self.token else None

    @classmethod
    def of(cls, content: bytes, **columns) -> Submission:
        """A submission of these bytes, with their size and SHA-256."""
        return cls(size=len(content), sha256=hashlib.sha256(content).hexdigest(), content=content, **columns)


ACTIVE_JOB = text("status IN ('queued', 'running')")


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("one_active_job_per_submission", "submission_id", unique=True,
                            sqlite_where=ACTIVE_JOB, postgresql_where=ACTIVE_JOB),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(ForeignKey("workers.id"), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float, doc="wall time of the grading attempt that finished it")

    submission: Mapped[Submission] = relationship(back_populates="jobs")
    report_row: Mapped[ReportRow | None] = relationship(back_populates="job", lazy="selectin")

    @property
    def report(self) -> Report | None:
        return Report.model_validate_json(self.report_row.body) if self.report_row else None


class ReportRow(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), unique=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    body: Mapped[str] = mapped_column(Text, doc="the report as JSON (schema grader.report/1)")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="report_row")


# Batches: a class handed in at once. Each student's file becomes a stored submission that the normal
# queue grades; an entry that could not be read keeps only why, so its student still gets a gradebook row.


class Batch(Base):
    """One upload of a class's submissions (a zip) by an instructor."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    assignment: Mapped[str] = mapped_column(String(100), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    id_pattern: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list, doc="what collecting the upload noticed")
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    token: Mapped[Token | None] = relationship(lazy="joined")
    entries: Mapped[list[BatchEntry]] = relationship(back_populates="batch", order_by="BatchEntry.id")

    @property
    def submitted_by(self) -> str | None:
        return self.token.name if self.token else None


class BatchEntry(Base):
    """One student of a batch: the submission its file became, or the problem that kept it from grading."""

    __tablename__ = "batch_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id"), index=True)
    student: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    filename: Mapped[str] = mapped_column(Text, doc="the path inside the upload")
    fingerprint: Mapped[str] = mapped_column(String(64), doc="SHA-256 of the bytes, or of the problem")
    source_hash: Mapped[str | None] = mapped_column(String(64), doc="the code's hash, for spotting identical code")
    submission_id: Mapped[str | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    problem: Mapped[str | None] = mapped_column(Text, doc="why it was rejected before grading")

    batch: Mapped[Batch] = relationship(back_populates="entries")
    submission: Mapped[Submission | None] = relationship()


@dataclass(frozen=True)
class NewBatchEntry:
    """A student's part of an upload: gradable (`content`, stored as submission `submission_id`) or `problem`."""

    student: str
    name: str
    filename: str
    fingerprint: str
    content: bytes | None = None
    submission_id: str | None = None
    source_hash: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to grade a job it now holds."""

    job_id: int
    submission_id: str
    assignment: str
    filename: str
    content: bytes


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


class Store:
    def __init__(self, url: str) -> None:
        if url.startswith("sqlite"):
            database = make_url(url).database
            if database and database != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
            self.engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Run inside the transaction that stores a report, so what they add (the LMS outbox's deliveries)
        # is committed with the report or not at all.
        self.report_hooks: list[Callable[[Session, int, Report], None]] = []
        Base.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1

    # Tokens

    def add_token(self, name: str, role: str, secret: str) -> Token:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        with self._sessions.begin() as session:
            token = Token(name=name, role=role, secret_hash=hash_secret(secret))
            session.add(token)
        return token

    def token_for_secret(self, secret: str) -> Token | None:
        with self._sessions() as session:
            return session.scalar(
                select(Token).where(Token.secret_hash == hash_secret(secret), Token.revoked_at.is_(None)))

    def tokens(self) -> list[Token]:
        with self._sessions() as session:
            return list(session.scalars(select(Token).order_by(Token.id)))

    def token(self, token_id: int) -> Token | None:
        with self._sessions() as session:
            return session.scalar(select(Token).where(Token.id == token_id, Token.revoked_at.is_(None)))

    def revoke_token(self, token_id: int) -> bool:
        with self._sessions.begin() as session:
            result = session.execute(
                update(Token).where(Token.id == token_id, Token.revoked_at.is_(None)).values(revoked_at=utcnow()))
            return result.rowcount == 1

    # Submissions

    def add_submission(self, *, submission_id: str, assignment: str, filename: str, content: bytes,
                       origin: str, token_id: int | None, with_rows: Iterable[Base] = ()) -> int:
        """Store a submission with its first job, queued, and `with_rows` in the same transaction (an LMS
        submission's row); returns the job id. Committed on return."""
        with self._sessions.begin() as session:
            submission = Submission.of(content, id=submission_id, assignment=assignment, filename=filename,
                                       origin=origin, token_id=token_id)
            job = Job(submission=submission)
            session.add_all([submission, job, *with_rows])
            session.flush()
            return job.id

    def submission(self, submission_id: str) -> Submission | None:
        with self._sessions() as session:
            return session.scalar(
                select(Submission).where(Submission.id == submission_id).options(selectinload(Submission.jobs)))

    def submissions(self, *, token_id: int | None = None, assignment: str | None = None,
                    limit: int = 50) -> list[Submission]:
        """Newest first; `token_id` keeps one token's own."""
        query = select(Submission).options(selectinload(Submission.jobs)).order_by(
            Submission.created_at.desc(), Submission.id).limit(limit)
        if token_id is not None:
            query = query.where(Submission.token_id == token_id)
        if assignment is not None:
            query = query.where(Submission.assignment == assignment)
        with self._sessions() as session:
            return list(session.scalars(query))

    def submission_content(self, submission_id: str) -> bytes | None:
        with self._sessions() as session:
            return session.scalar(select(Submission.content).where(Submission.id == submission_id))

    def job_status(self, job_id: int) -> str | None:
        with self._sessions() as session:
            return session.scalar(select(Job.status).where(Job.id == job_id))

    # Jobs, as workers see them

    def claim(self, job_id: int, worker_id: str) -> ClaimedJob | None:
        """Take a queued job for this worker, or None when it is not queued (taken, finished, unknown)."""
        with self._sessions.begin() as session:
            taken = session.execute(
                update(Job).where(Job.id == job_id, Job.status == "queued")
                .values(status="running", worker_id=worker_id, attempts=Job.attempts + 1, started_at=utcnow()))
            if taken.rowcount != 1:
                return None
            row = session.execute(
                select(Submission.id, Submission.assignment, Submission.filename, Submission.content)
                .join(Job, Job.submission_id == Submission.id).where(Job.id == job_id)).one()
        return ClaimedJob(job_id, *row)

    def finish(self, job_id: int, worker_id: str, report: Report, seconds: float) -> bool:
        """Record a job's report; False if the job was taken from this worker meanwhile."""
        with self._sessions.begin() as session:
            if not self._close_job(session, job_id, worker_id, "done", None, seconds):
                return False
            session.add(ReportRow(
                job_id=job_id, submission_id=report.submission_id, status=report.status, score=report.score,
                max_score=report.max_score, body=report.to_json(indent=None)))
            for hook in self.report_hooks:
                hook(session, job_id, report)
            return True

    def fail(self, job_id: int, worker_id: str, error: str, seconds: float) -> bool:
        with self._sessions.begin() as session:
            return self._close_job(session, job_id, worker_id, "failed", error, seconds)

    @staticmethod
    def _close_job(session, job_id: int, worker_id: str, status: str, error: str | None, seconds: float) -> bool:
        closed = session.execute(
            update(Job).where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
            .values(status=status, error=error, finished_at=utcnow(), seconds=seconds))
        return closed.rowcount == 1

    def queued_job_ids(self) -> list[int]:
        with self._sessions() as session:
            return list(session.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.id)))

    def requeue_orphans(self, is_dead: Callable[[Worker], bool]) -> list[int]:
        """Put the running jobs of dead workers back in the queue (or fail them after MAX_ATTEMPTS).

        Returns the ids that need enqueueing again."""
        with self._sessions() as session:
            candidates = session.execute(
                select(Job.id, Job.attempts, Worker).join(Worker, Job.worker_id == Worker.id)
                .where(Job.status == "running")).all()
        requeued = []
        for job_id, attempts, worker in candidates:
            if not is_dead(worker):
                continue
            retry = attempts < MAX_ATTEMPTS
            values = {"status": "queued", "queued_at": utcnow()} if retry else {
                "status": "failed", "finished_at": utcnow(),
                "error": f"the grader stopped while grading this submission {attempts} times"}
            with self._sessions.begin() as session:
                changed = session.execute(update(Job).where(
                    Job.id == job_id, Job.status == "running", Job.worker_id == worker.id).values(**values))
            if changed.rowcount == 1 and retry:
                requeued.append(job_id)
        return requeued

    # Workers

    def register_worker(self, worker_id: str, *, host: str, pid: int, sandbox: str, pool_size: int) -> None:
        with self._sessions.begin() as session:
            session.add(Worker(id=worker_id, host=host, pid=pid, sandbox=sandbox, pool_size=pool_size))

    def heartbeat(self, worker_id: str) -> None:
        with self._sessions.begin() as session:
            session.execute(update(Worker).where(Worker.id == worker_id).values(heartbeat_at=utcnow()))

    def stop_worker(self, worker_id: str) -> None:
        with self._sessions.begin() as session:
            session.execute(update(Worker).where(Worker.id == worker_id).values(stopped_at=utcnow()))

    def live_workers(self, fresh_within: timedelta) -> int:
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(Worker).where(
                Worker.stopped_at.is_(None), Worker.heartbeat_at >= utcnow() - fresh_within))

    # Batches

    def add_batch(self, *, batch_id: str, assignment: str, filename: str, id_pattern: str | None,
                  warnings: list[str], token_id: int | None, entries: Iterable[NewBatchEntry]) -> list[int]:
        """Store a batch, its entries and a queued job per gradable one, all or nothing; returns the job ids."""
        with self._sessions.begin() as session:
            batch = Batch(id=batch_id, assignment=assignment, filename=filename, id_pattern=id_pattern,
                          warnings=warnings, token_id=token_id)
            jobs = []
            for new in entries:
                submission = None
                if new.content is not None:
                    submission = Submission.of(new.content, id=new.submission_id, assignment=assignment,
                                               filename=PurePosixPath(new.filename).name[-255:], origin="batch",
                                               token_id=token_id)
                    jobs.append(Job(submission=submission))
                batch.entries.append(BatchEntry(
                    student=new.student, name=new.name, filename=new.filename, fingerprint=new.fingerprint,
                    source_hash=new.source_hash, problem=new.problem, submission=submission))
            session.add(batch)
            session.add_all(jobs)
            session.flush()
            return [job.id for job in jobs]

    def batch(self, batch_id: str) -> Batch | None:
        """A batch with its entries, their submissions, jobs and reports."""
        with self._sessions() as session:
            return session.scalar(select(Batch).where(Batch.id == batch_id).options(
                selectinload(Batch.entries).selectinload(BatchEntry.submission).selectinload(Submission.jobs)))

    def batches(self, limit: int = 50) -> list[Batch]:
        """Newest first, with entries and job states but not reports (enough to count progress)."""
        query = select(Batch).order_by(Batch.created_at.desc(), Batch.id).limit(limit).options(
            selectinload(Batch.entries).selectinload(BatchEntry.submission).selectinload(Submission.jobs)
            .raiseload(Job.report_row))
        with self._sessions() as session:
            return list(session.scalars(query))

    # Numbers for /metrics

    def job_counts(self) -> dict[str, int]:
        with self._sessions() as session:
            counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
        return {status: counts.get(status, 0) for status in JOB_STATUSES}

    def grade_durations(self, buckets: Iterable[float]) -> tuple[list[int], int, float]:
        """Cumulative counts of finished jobs at or under each bucket bound, their count and their sum."""
        buckets = list(buckets)
        columns = [func.coalesce(func.sum(case((Job.seconds <= bound, 1), else_=0)), 0) for bound in buckets]
        with self._sessions() as session:
            *counts, total, seconds = session.execute(
                select(*columns, func.count(Job.seconds), func.coalesce(func.sum(Job.seconds), 0.0))
                .where(Job.seconds.is_not(None))).one()
        return [int(c) for c in counts], int(total), float(seconds)


def default_database_url(data_dir: str | os.PathLike) -> str:
    return f"sqlite:///{os.path.abspath(os.path.join(data_dir, 'grader.db'))}"
