"""Taking a submission in and reading it back: the part the JSON API and the pages share."""

from __future__ import annotations

import logging
import time
from pathlib import PurePath

from flask import current_app
from werkzeug.datastructures import FileStorage

from grader import assignments
from grader.app.auth import can_read
from grader.app.errors import abort
from grader.app.extensions import queue, store
from grader.grading import new_submission_id
from grader.intake import IntakeError, read_submission
from grader.report import Report
from grader.store import FINISHED, Submission, Token

log = logging.getLogger(__name__)


def assignment_or_404(slug: str) -> assignments.Assignment:
    try:
        return assignments.get(slug)
    except assignments.UnknownAssignment as exc:
        abort(404, "unknown_assignment", str(exc))


def submit(slug: str, upload: FileStorage | None, token: Token, origin: str) -> Submission:
    """Check the upload, store it and queue its grading; the submission is committed when this returns."""
    spec = assignment_or_404(slug)
    if upload is None or not upload.filename:
        abort(422, "missing_file", "attach the notebook (.ipynb) or module (.py) as the multipart field 'file'")
    filename = PurePath(upload.filename.replace("\\", "/")).name[-255:]
    data = upload.read()
    check_intake(data, filename)
    submission_id = new_submission_id()
    job_id = store().add_submission(submission_id=submission_id, assignment=spec.slug, filename=filename,
                                    content=data, origin=origin, token_id=token.id)
    enqueue(job_id, submission_id)
    return store().submission(submission_id)


def check_intake(data: bytes, filename: str) -> None:
    """Refuse what cannot be graded at all (413 too large, 422 unreadable) before anything is stored."""
    max_bytes = current_app.config["MAX_SUBMISSION_BYTES"]
    try:
        read_submission(data, filename, max_bytes)
    except IntakeError as exc:
        if len(data) > max_bytes:
            abort(413, "too_large", str(exc))
        abort(422, "invalid_submission", str(exc))


def enqueue(job_id: int, submission_id: str) -> None:
    """Queue a stored submission's job; 503 if the queue is down (a worker queues it again when it starts)."""
    try:
        queue().enqueue(job_id)
    except Exception:
        log.exception("could not enqueue job %d", job_id)
        abort(503, "queue_unavailable", f"submission {submission_id} is stored, but the queue cannot be reached:"
              " it will be graded when a worker starts")


def wait_until_finished(submission: Submission, seconds: float) -> Submission:
    """Poll the store (where workers on any machine record the job) until the job finishes or time is up."""
    deadline = time.monotonic() + seconds
    delay = 0.02
    while store().job_status(submission.job.id) not in FINISHED and time.monotonic() < deadline:
        time.sleep(min(delay, max(deadline - time.monotonic(), 0)))
        delay = min(delay * 1.5, 0.1)
    return store().submission(submission.id)


def readable_or_404(submission_id: str, token: Token) -> Submission:
    """Someone else's submission is as absent as a missing one: ids are not confirmed to strangers."""
    submission = store().submission(submission_id)
    if submission is None or not can_read(token, submission):
        abort(404, "unknown_submission", f"no submission {submission_id!r} that you can read")
    return submission


def report_for(token: Token, submission: Submission) -> Report | None:
    """The report as this reader may see it: instructors see everything, students not hidden checks' output."""
    report = submission.job.report
    if report is None or token.role == "instructor":
        return report
    return report.student_view()
