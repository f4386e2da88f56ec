"""LMS integrations, the submissions they sent, and the outbox of what goes back to them, in the service's database.

An integration is a named LMS with its webhook secret (encrypted with `grader.lms.SecretBox`) and,
for an LTI 1.3 platform, its registration. A webhook's submission is stored with its LMS row in one
transaction, and (integration, external_id) is unique: a repeat finds the first submission and is
never graded again.

The outbox: when a worker stores the report of an LMS submission, the same transaction adds a
delivery per destination (the signed callback, the LTI score), its body frozen, so a report is
never without its deliveries and a delivery never without its report. Senders claim due
deliveries with one conditional UPDATE and a lease (a sender killed mid-attempt loses it when the
lease runs out), and each attempt is logged in the transaction that records what follows it.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, sessionmaker

from grader.lms import AttemptResult, Decision, LtiPlatform, SecretBox, WebhookFields, callback_payload, score_document
from grader.lms.outbox import encode
from grader.report import Report
from grader.store import Base, Store, Submission, utcnow

DELIVERY_KINDS = ("callback", "lti_score")
DELIVERY_STATES = ("pending", "sending", "delivered", "gave_up")
# What a delivery becomes after an attempt, by the outbox policy's decision.
STATE_AFTER = {"delivered": "delivered", "retry": "pending", "gave_up": "gave_up"}
# Sent in a header, typed on command lines: keep it plain.
INTEGRATION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class LmsIntegration(Base):
    __tablename__ = "lms_integrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    full_report: Mapped[bool] = mapped_column(default=False, doc="callbacks carry the instructor's report")
    lti: Mapped[dict[str, Any] | None] = mapped_column(JSON, doc="the LTI 1.3 platform (an LtiPlatform)")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class LmsSubmission(Base):
    """What an LMS said about a submission it sent: who, and where the report and score go."""

    __tablename__ = "lms_submissions"
    __table_args__ = (UniqueConstraint("integration_id", "external_id", name="one_submission_per_external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("lms_integrations.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), unique=True)
    student: Mapped[str] = mapped_column(String(200))
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    lineitem: Mapped[str | None] = mapped_column(String(2048))
    submission_url: Mapped[str] = mapped_column(String(2048), doc="the API URL of the submission, for the callback")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    integration: Mapped[LmsIntegration] = relationship(lazy="joined")
    # Not read: it tells the unit of work to insert the submission first.
    submission: Mapped[Submission] = relationship(lazy="raise")


class Delivery(Base):
    """One thing to send to an LMS about one graded job: its id goes out as X-Grader-Delivery on every attempt."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("job_id", "kind", name="one_delivery_per_job_and_kind"),
                      Index("deliveries_due", "state", "next_attempt_at"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    lms_submission_id: Mapped[int] = mapped_column(ForeignKey("lms_submissions.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    kind: Mapped[str] = mapped_column(String(20))
    target_url: Mapped[str] = mapped_column(String(2048))
    body: Mapped[str] = mapped_column(Text, doc="the JSON sent, frozen when the report was stored")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0, doc="since it was last queued (a re-send starts again at 0)")
    total_attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    lms_submission: Mapped[LmsSubmission] = relationship(lazy="joined")
    history: Mapped[list[DeliveryAttempt]] = relationship(order_by="DeliveryAttempt.number", lazy="selectin")


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(ForeignKey("deliveries.id"), index=True)
    number: Mapped[int] = mapped_column(doc="1, 2, ... over the delivery's life, re-sends included")
    started_at: Mapped[datetime]
    duration: Mapped[float] = mapped_column(doc="seconds")
    ok: Mapped[bool]
    status_code: Mapped[int | None]
    retryable: Mapped[bool]
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class ClaimedDelivery:
    """What a sender needs to make one attempt at a delivery it now holds."""

    id: str
    kind: str
    target_url: str
    body: str
    attempts: int  # this attempt's number since the delivery was last queued
    number: int  # this attempt's number over the delivery's life
    secret_encrypted: str
    lti: dict[str, Any] | None  # an LtiPlatform


class DeliveryBusy(Exception):
    """The delivery is being sent right now: a re-send would race the attempt under way."""


def _due(now: datetime):
    """Deliveries a sender may take: pending and due, or held by a sender whose lease ran out."""
    return or_(and_(Delivery.state == "pending", Delivery.next_attempt_at <= now),
               and_(Delivery.state == "sending", Delivery.lease_until < now))


def outgoing(row: LmsSubmission, report: Report) -> Iterator[tuple[str, str, str]]:
    """(kind, target URL, body) of each delivery a report of this LMS submission makes."""
    integration = row.integration
    if row.callback_url:
        payload = callback_payload(report, external_id=row.external_id, student=row.student,
                                   submission_url=row.submission_url, full_report=integration.full_report)
        yield "callback", row.callback_url, encode(payload).decode()
    if row.lineitem and integration.lti and report.max_score > 0:  # AGS has no score out of 0
        # The grading time, so that a late retry of an old grade never overrides a newer one.
        score = score_document(row.student, report.score, report.max_score,
                               comment=f"{report.score:g}/{report.max_score:g}", timestamp=report.finished_at)
        yield "lti_score", row.lineitem, json.dumps(score)


class LmsStore:
    """The LMS tables beside a `Store`: each method one short transaction, as in `Store`."""

    def __init__(self, store: Store, secrets: SecretBox) -> None:
        self.store = store
        self.secrets = secrets
        self._sessions = sessionmaker(store.engine, expire_on_commit=False)
        Base.metadata.create_all(store.engine)
        store.report_hooks.append(self._queue_deliveries)

    # Integrations

    def add_integration(self, name: str, secret: str, *, full_report: bool = False,
                        lti: LtiPlatform | None = None) -> LmsIntegration:
        if not INTEGRATION_NAME.fullmatch(name):
            raise ValueError(f"{name!r}: a name is 1 to 100 letters, digits, '.', '_' or '-', starting with a letter"
                             " or digit")
        integration = LmsIntegration(name=name, secret_encrypted=self.secrets.encrypt(secret), full_report=full_report,
                                     lti=lti.model_dump() if lti else None)
        try:
            with self._sessions.begin() as session:
                session.add(integration)
        except IntegrityError:
            raise ValueError(f"an integration named {name!r} exists already (see `grader lms list`)") from None
        return integration

    def integration(self, name: str) -> LmsIntegration | None:
        """The active integration of that name."""
        with self._sessions() as session:
            return session.scalar(select(LmsIntegration).where(LmsIntegration.name == name,
                                                               LmsIntegration.revoked_at.is_(None)))

    def integrations(self) -> list[LmsIntegration]:
        with self._sessions() as session:
            return list(session.scalars(select(LmsIntegration).order_by(LmsIntegration.id)))

    def revoke_integration(self, name: str) -> bool:
        """Refuse the integration's webhooks from now on; what it already sent is still graded and reported."""
        with self._sessions.begin() as session:
            result = session.execute(update(LmsIntegration).where(
                LmsIntegration.name == name, LmsIntegration.revoked_at.is_(None)).values(revoked_at=utcnow()))
            return result.rowcount == 1

    def secret(self, integration: LmsIntegration) -> str:
        return self.secrets.decrypt(integration.secret_encrypted)

    # Submissions

    def add_submission(self, integration: LmsIntegration, fields: WebhookFields, *, submission_id: str,
                       filename: str, content: bytes, submission_url: str) -> tuple[LmsSubmission, int | None]:
        """Store the submission, its queued job and its LMS row at once; returns the row and the job id to queue.

        A repeated external_id stores nothing and returns the first submission's row and None."""
        found = self._lms_submission(integration.id, fields.external_id)
        if found is not None:
            return found, None
        row = LmsSubmission(integration_id=integration.id, external_id=fields.external_id, submission_id=submission_id,
                            student=fields.student, callback_url=fields.callback_url, lineitem=fields.lineitem,
                            submission_url=submission_url)
        try:
            job_id = self.store.add_submission(submission_id=submission_id, assignment=fields.assignment,
                                               filename=filename, content=content, origin="lms", token_id=None,
                                               with_rows=[row])
        except IntegrityError:  # the same external_id arrived at the same time: the first one won
            found = self._lms_submission(integration.id, fields.external_id)
            if found is None:
                raise
            return found, None
        return self._lms_submission(integration.id, fields.external_id), job_id

    def _lms_submission(self, integration_id: int, external_id: str) -> LmsSubmission | None:
        with self._sessions() as session:
            return session.scalar(select(LmsSubmission).where(LmsSubmission.integration_id == integration_id,
                                                              LmsSubmission.external_id == external_id))

    def _queue_deliveries(self, session: Session, job_id: int, report: Report) -> None:
        """`Store.finish` hook: the deliveries of an LMS submission's report, in the report's transaction."""
        row = session.scalar(select(LmsSubmission).where(LmsSubmission.submission_id == report.submission_id))
        if row is not None:
            session.add_all(Delivery(lms_submission_id=row.id, job_id=job_id, kind=kind, target_url=url, body=body)
                            for kind, url, body in outgoing(row, report))

    # The outbox, as senders see it

    def claim_next(self, lease: timedelta) -> ClaimedDelivery | None:
        """Take the most overdue delivery for `lease`, or None when nothing is due."""
        while True:
            now = utcnow()
            with self._sessions() as session:
                candidate = session.scalar(select(Delivery.id).where(_due(now)).order_by(Delivery.next_attempt_at)
                                           .limit(1))
            if candidate is None:
                return None
            with self._sessions.begin() as session:
                taken = session.execute(update(Delivery).where(Delivery.id == candidate, _due(now)).values(
                    state="sending", lease_until=now + lease, attempts=Delivery.attempts + 1,
                    total_attempts=Delivery.total_attempts + 1, updated_at=now))
                if taken.rowcount == 1:
                    delivery = session.get(Delivery, candidate)
                    integration = delivery.lms_submission.integration
                    return ClaimedDelivery(
                        delivery.id, delivery.kind, delivery.target_url, delivery.body, delivery.attempts,
                        delivery.total_attempts, integration.secret_encrypted, integration.lti)
            # another sender took it between the two statements: look again

    def record_attempt(self, claimed: ClaimedDelivery, started_at: datetime, result: AttemptResult,
                       decision: Decision) -> bool:
        """Log the attempt and apply what follows it, at once; False if the lease was lost to another sender."""
        values: dict[str, Any] = {
            "state": STATE_AFTER[decision.state], "lease_until": None, "last_status_code": result.status_code,
            "last_error": decision.reason or None, "updated_at": utcnow(), "next_attempt_at": decision.retry_at,
        }
        if decision.state == "delivered":
            values["delivered_at"] = values["updated_at"]
        with self._sessions.begin() as session:
            session.add(DeliveryAttempt(
                delivery_id=claimed.id, number=claimed.number, started_at=started_at, duration=result.duration,
                ok=result.ok, status_code=result.status_code, retryable=result.retryable, error=result.error,
                response_excerpt=result.response_excerpt))
            changed = session.execute(update(Delivery).where(
                Delivery.id == claimed.id, Delivery.state == "sending", Delivery.total_attempts == claimed.number,
            ).values(**values))
            return changed.rowcount == 1

    # The outbox, as instructors see it

    def deliveries(self, *, state: str | None = None, submission_id: str | None = None,
                   limit: int = 50) -> list[Delivery]:
        """Newest first, with their attempts."""
        query = select(Delivery).order_by(Delivery.created_at.desc(), Delivery.id).limit(limit)
        if state is not None:
            query = query.where(Delivery.state == state)
        if submission_id is not None:
            query = query.join(LmsSubmission).where(LmsSubmission.submission_id == submission_id)
        with self._sessions() as session:
            return list(session.scalars(query))

    def delivery(self, delivery_id: str) -> Delivery | None:
        with self._sessions() as session:
            return session.get(Delivery, delivery_id)

    def resend(self, delivery_id: str) -> Delivery | None:
        """Queue a delivery again now, with a fresh attempt budget; None if there is no such delivery.

        `DeliveryBusy` if a sender holds it: its attempt decides first."""
        now = utcnow()
        with self._sessions.begin() as session:
            queued = session.execute(update(Delivery).where(
                Delivery.id == delivery_id, or_(Delivery.state != "sending", Delivery.lease_until < now),
            ).values(state="pending", attempts=0, next_attempt_at=now, lease_until=None, updated_at=now))
        found = self.delivery(delivery_id)
        if found is not None and queued.rowcount == 0:
            raise DeliveryBusy(delivery_id)
        return found

    def delivery_counts(self) -> dict[str, int]:
        with self._sessions() as session:
            counts = dict(session.execute(select(Delivery.state, func.count()).group_by(Delivery.state)).all())
        return {state: counts.get(state, 0) for state in DELIVERY_STATES}

