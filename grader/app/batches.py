"""Batches through the service: an instructor uploads a class's zip, the normal queue grades it.

Each student's file becomes a stored submission with a job in the normal queue, so workers,
warm pools, crash recovery and "never graded twice" apply unchanged; a file that cannot be
graded is kept as a rejected entry with its reason. Progress, gradebooks and the summary are
derived from the submissions' job states and reports whenever they are asked for, with the
same code as `grader batch` (`grader.batch`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import PurePath
from typing import ClassVar, NoReturn

import marshmallow as ma
from flask import Flask, Response, current_app, g, request, url_for
from flask_smorest import Api, Blueprint
from flask_smorest.fields import Upload
from marshmallow import fields, validate
from webargs.flaskparser import FlaskParser
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import CombinedMultiDict, FileStorage

from grader import assignments
from grader.app.api import instructor_required, refuses
from grader.app.errors import abort
from grader.app.extensions import queue, store
from grader.app.submissions import assignment_or_404
from grader.assignments import Assignment
from grader.batch import BATCH_STATUSES, CollectError, Result, source_hash
from grader.batch.collect import SUBMISSION_SUFFIXES, collect_zip
from grader.batch.core import fingerprint, report_result
from grader.batch.output import canvas_csv, gradebook_csv
from grader.batch.summary import render_summary_html, summarize
from grader.grading import new_submission_id
from grader.intake import IntakeError, read_submission
from grader.store import FINISHED, JOB_STATUSES, Batch, BatchEntry, NewBatchEntry, Token

log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_BYTES = 100 * 1024 * 1024
ENTRY_STATUSES = (*JOB_STATUSES, "rejected")
ZIP_HELP = "a zip holding one .py or .ipynb file per student, or one folder per student"


# Reading a multipart form's files and fields together, so one schema validates (and documents) the whole form.

class _MultipartParser(FlaskParser):
    __location_map__: ClassVar = {**FlaskParser.__location_map__, "multipart": "load_multipart"}

    def load_multipart(self, req, schema) -> MultiDictProxy:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


class _Blueprint(Blueprint):
    ARGUMENTS_PARSER = _MultipartParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING: ClassVar = {**Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
                                                       "multipart": "multipart/form-data"}


blp = _Blueprint("batches", __name__, url_prefix="/api/v1/batches",
                 description="Grade a whole class from a zip (instructors): progress, gradebooks, class summary.")


# Schemas

class BatchUploadSchema(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE

    file = Upload(required=True, metadata={"description": ZIP_HELP},
                  error_messages={"required": f"attach {ZIP_HELP} as the multipart field 'file'"})
    assignment = fields.String(required=True, metadata={"description": "the assignment's slug, e.g. maximize"})
    id_pattern = fields.String(load_default=None, metadata={
        "description": "a regular expression that picks the student id (group `id`) and name (group `name`)"
                       " out of each file or folder name; see docs/batch.md"})


class BatchListQuerySchema(ma.Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class CanvasQuerySchema(ma.Schema):
    canvas_id = fields.String(load_default=None, validate=validate.Length(max=100), metadata={
        "description": "the Canvas assignment id, named in the score column's header"})


class BatchCountsSchema(ma.Schema):
    total = fields.Integer(required=True, metadata={"description": "students in the upload"})
    queued = fields.Integer(required=True)
    running = fields.Integer(required=True)
    done = fields.Integer(required=True, metadata={"description": "graded (whatever the score)"})
    failed = fields.Integer(required=True, metadata={"description": "the grader failed (not the submission)"})
    rejected = fields.Integer(required=True, metadata={"description": "not gradable: unreadable, not UTF-8, ..."})


class BatchLinksSchema(ma.Schema):
    self = fields.String(required=True)
    html = fields.String(required=True, metadata={"description": "the batch's page, with a progress bar"})
    gradebook = fields.String(required=True, metadata={"description": "gradebook CSV, once finished"})
    canvas = fields.String(required=True, metadata={"description": "Canvas gradebook import CSV, once finished"})
    summary = fields.String(required=True, metadata={"description": "class summary (HTML), once finished"})


class BatchSchema(ma.Schema):
    id = fields.String(required=True)
    assignment = fields.String(required=True)
    filename = fields.String(required=True)
    id_pattern = fields.String(required=True, allow_none=True)
    submitted_at = fields.DateTime(required=True)
    submitted_by = fields.String(required=True, allow_none=True, metadata={"description": "the token's name"})
    finished = fields.Boolean(required=True, metadata={"description": "nothing is queued or running any more"})
    counts = fields.Nested(BatchCountsSchema, required=True)
    warnings = fields.List(fields.String(), required=True, metadata={"description": "e.g. names the id pattern"
                                                                                    " did not match"})
    links = fields.Nested(BatchLinksSchema, required=True)


class BatchStudentLinksSchema(ma.Schema):
    submission = fields.String(required=True, allow_none=True, metadata={"description": "the stored submission"})
    html = fields.String(required=True, allow_none=True, metadata={"description": "its report page"})


class BatchStudentSchema(ma.Schema):
    student = fields.String(required=True)
    name = fields.String(required=True)
    filename = fields.String(required=True, metadata={"description": "the path inside the zip"})
    status = fields.String(required=True, validate=validate.OneOf(ENTRY_STATUSES), metadata={
        "description": "the grading job's status, or rejected (see message)"})
    result = fields.String(required=True, allow_none=True, validate=validate.OneOf(BATCH_STATUSES), metadata={
        "description": "once finished, as in the gradebook: graded, rejected, error, timeout, crashed, out_of_memory"})
    score = fields.Float(required=True, allow_none=True)
    max_score = fields.Float(required=True)
    message = fields.String(required=True, allow_none=True, metadata={"description": "what went wrong, if anything"})
    submission_id = fields.String(required=True, allow_none=True)
    links = fields.Nested(BatchStudentLinksSchema, required=True)


class BatchDetailSchema(BatchSchema):
    students = fields.List(fields.Nested(BatchStudentSchema), required=True)


# Taking a batch in

def max_batch_bytes() -> int:
    return current_app.config["MAX_BATCH_BYTES"]


def allow_batch_upload() -> None:
    """Lift this request's size cap from one submission's to a class's, and refuse a larger body unread."""
    request.max_content_length = max_batch_bytes() + 64 * 1024
    if (request.content_length or 0) > request.max_content_length:
        _too_large("the upload")


def _too_large(what: str) -> NoReturn:
    abort(413, "too_large", f"{what} is too large: a batch zip may be at most {max_batch_bytes() / 2**20:g} MB")


def create_batch(slug: str, upload: FileStorage | None, id_pattern: str | None, token: Token) -> str:
    """Check the zip, store the batch with a submission and a queued job per gradable student; return its id.

    Nothing is stored unless the whole upload is usable; a student's unusable file is a rejected entry."""
    try:
        spec = assignments.get(slug)
    except assignments.UnknownAssignment as exc:
        abort(422, "unknown_assignment", str(exc))
    if upload is None or not upload.filename:
        abort(422, "missing_file", f"attach {ZIP_HELP} as the multipart field 'file'")
    filename = PurePath(upload.filename.replace("\\", "/")).name[-255:]
    data = upload.read(max_batch_bytes() + 1)
    if len(data) > max_batch_bytes():
        _too_large(filename)
    max_bytes = current_app.config["MAX_SUBMISSION_BYTES"]
    try:
        entries, warnings = collect_zip(data, filename, id_pattern or None, max_bytes=max_bytes)
    except CollectError as exc:
        abort(422, "invalid_batch", str(exc))
    if not any(PurePath(entry.filename).suffix.lower() in SUBMISSION_SUFFIXES for entry in entries):
        abort(422, "empty_batch", f"{filename} holds no submissions: upload {ZIP_HELP}")
    new_entries = []
    for entry in entries:
        common = {"student": entry.student, "name": entry.name or entry.student, "filename": entry.filename,
                  "fingerprint": fingerprint(entry)}
        try:
            if entry.problem:
                raise IntakeError(entry.problem)
            code_hash = source_hash(read_submission(entry.data, entry.filename, max_bytes))
        except IntakeError as exc:
            new_entries.append(NewBatchEntry(**common, problem=str(exc)))
        else:
            new_entries.append(NewBatchEntry(**common, content=entry.data, submission_id=new_submission_id(),
                                             source_hash=code_hash))
    batch_id = new_submission_id()
    job_ids = store().add_batch(batch_id=batch_id, assignment=spec.slug, filename=filename, id_pattern=id_pattern,
                                warnings=warnings, token_id=token.id, entries=new_entries)
    try:
        for job_id in job_ids:
            queue().enqueue(job_id)
    except Exception:
        log.exception("could not enqueue the jobs of batch %s", batch_id)
        abort(503, "queue_unavailable", f"batch {batch_id} is stored, but the queue cannot be reached:"
              " it will be graded when a worker starts")
    return batch_id


# Reading a batch back

def batch_or_404(batch_id: str) -> Batch:
    batch = store().batch(batch_id)
    if batch is None:
        abort(404, "unknown_batch", f"no batch {batch_id!r}")
    return batch


def entry_status(entry: BatchEntry) -> str:
    return "rejected" if entry.submission is None else entry.submission.job.status


def counts(batch: Batch) -> dict[str, int]:
    statuses = [entry_status(entry) for entry in batch.entries]
    return {"total": len(statuses), **{status: statuses.count(status) for status in ENTRY_STATUSES}}


def is_finished(batch: Batch) -> bool:
    return all(entry_status(entry) in (*FINISHED, "rejected") for entry in batch.entries)


def entry_result(entry: BatchEntry, spec: Assignment) -> Result | None:
    """The student's gradebook row as `grader batch` would write it, or None while still grading."""
    base = {"student": entry.student, "name": entry.name, "filename": entry.filename, "slug": spec.slug,
            "version": spec.version, "sha256": entry.fingerprint, "max_score": spec.max_score}
    if entry.submission is None:
        return Result(**base, status="rejected", score=0.0, message=entry.problem or "")
    job = entry.submission.job
    if job.status == "done":
        return report_result(base, job.report, entry.source_hash)
    if job.status == "failed":
        return Result(**base, status="error", score=0.0, message=f"grading failed: {job.error}", retry=True)
    return None


@dataclass(frozen=True)
class FinishedBatch:
    """A batch with nothing left to grade, and every student's result in the upload's order."""

    batch: Batch
    spec: Assignment
    results: list[Result]


def finished_or_409(batch_id: str) -> FinishedBatch:
    batch = batch_or_404(batch_id)
    if not is_finished(batch):
        found = counts(batch)
        abort(409, "batch_in_progress", f"batch {batch_id} is still grading ({found['queued'] + found['running']}"
              f" of {found['total']} to go): try again when it is finished")
    spec = assignment_or_404(batch.assignment)
    return FinishedBatch(batch, spec, [entry_result(entry, spec) for entry in batch.entries])


def _download(text: str, mimetype: str, name: str) -> Response:
    return Response(text, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def gradebook_response(batch_id: str) -> Response:
    done = finished_or_409(batch_id)
    return _download(gradebook_csv(done.results, done.spec), "text/csv",
                     f"{done.spec.slug}-{batch_id}-gradebook.csv")


def canvas_response(batch_id: str, canvas_id: str | None) -> Response:
    done = finished_or_409(batch_id)
    return _download(canvas_csv(done.results, done.spec, canvas_id), "text/csv", f"{done.spec.slug}-{batch_id}-canvas.csv")


def summary_response(batch_id: str) -> Response:
    """The class summary of `grader batch`, each student linked to the report's page."""
    done = finished_or_409(batch_id)
    batch = done.batch
    summary = summarize(done.results, done.spec, {
        "batch": batch.id, "file": batch.filename, "submitted_by": batch.submitted_by,
        "submitted_at": batch.created_at.isoformat()})

    submissions = {entry.student: entry.submission_id for entry in batch.entries}

    def report_page(result: Result) -> str | None:
        submission_id = submissions[result.student]
        return url_for("web.submission", submission_id=submission_id) if submission_id else None
    return Response(render_summary_html(summary, done.results, report_page), mimetype="text/html")


def batch_body(batch: Batch, *, students: bool) -> dict:
    """The API's view of a batch; `students` adds every student's row (it reads every report)."""
    body = {
        "id": batch.id,
        "assignment": batch.assignment,
        "filename": batch.filename,
        "id_pattern": batch.id_pattern,
        "submitted_at": batch.created_at,
        "submitted_by": batch.submitted_by,
        "finished": is_finished(batch),
        "counts": counts(batch),
        "warnings": batch.warnings,
        "links": {
            "self": url_for("batches.get_batch", batch_id=batch.id, _external=True),
            "html": url_for("batch_pages.batch", batch_id=batch.id, _external=True),
            "gradebook": url_for("batches.get_gradebook", batch_id=batch.id, _external=True),
            "canvas": url_for("batches.get_canvas", batch_id=batch.id, _external=True),
            "summary": url_for("batches.get_summary", batch_id=batch.id, _external=True),
        },
    }
    if students:
        spec = assignment_or_404(batch.assignment)
        body["students"] = [_student(entry, spec) for entry in batch.entries]
    return body


def _student(entry: BatchEntry, spec: Assignment) -> dict:
    result = entry_result(entry, spec)
    submission_id = entry.submission_id
    return {
        "student": entry.student,
        "name": entry.name,
        "filename": entry.filename,
        "status": entry_status(entry),
        "result": result.status if result else None,
        "score": result.score if result else None,
        "max_score": spec.max_score,
        "message": (result.message or None) if result else None,
        "submission_id": submission_id,
        "links": {
            "submission": url_for("api.get_submission", submission_id=submission_id, _external=True)
            if submission_id else None,
            "html": url_for("web.submission", submission_id=submission_id, _external=True) if submission_id else None,
        },
    }


# The API

def _upload_limit(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args, **kwargs):
        allow_batch_upload()
        return view(*args, **kwargs)
    return wrapped


@blp.post("")
@instructor_required
@refuses(413, 503)
@_upload_limit
@blp.arguments(BatchUploadSchema, location="multipart", as_kwargs=True)
@blp.response(202, BatchDetailSchema, description="Stored and queued: follow Location for progress",
              headers={"Location": {"description": "the batch", "schema": {"type": "string"}}})
def create(file: FileStorage, assignment: str, id_pattern: str | None):
    """Grade a class: upload a zip of submissions

    One file per student (`alice.py`) or one folder per student (`alice/hw1.ipynb`). Every
    readable file is stored and queued; a file that cannot be graded (not UTF-8, not a notebook,
    too large, several candidates) becomes a rejected row with its reason. An upload that is not a
    zip, holds no submissions, or names an unknown assignment is refused, and nothing is stored."""
    batch = store().batch(create_batch(assignment, file, id_pattern, g.token))
    body = batch_body(batch, students=True)
    return body, 202, {"Location": body["links"]["self"]}


@blp.get("")
@instructor_required
@blp.arguments(BatchListQuerySchema, location="query", as_kwargs=True)
@blp.response(200, BatchSchema(many=True))
def list_batches(limit: int):
    """List batches, newest first, with their progress"""
    return [batch_body(batch, students=False) for batch in store().batches(limit)]


@blp.get("/<batch_id>")
@instructor_required
@refuses(404)
@blp.response(200, BatchDetailSchema)
def get_batch(batch_id: str):
    """Show a batch: progress counts and every student's status and score"""
    return batch_body(batch_or_404(batch_id), students=True)


@blp.get("/<batch_id>/gradebook.csv")
@instructor_required
@refuses(404, 409)
@blp.response(200, {"type": "string"}, content_type="text/csv",
              description="student,score,max_score,status, the points of each check, message")
def get_gradebook(batch_id: str) -> Response:
    """Download the gradebook, once the batch is finished"""
    return gradebook_response(batch_id)


@blp.get("/<batch_id>/canvas.csv")
@instructor_required
@refuses(404, 409)
@blp.arguments(CanvasQuerySchema, location="query", as_kwargs=True)
@blp.response(200, {"type": "string"}, content_type="text/csv", description="Canvas's gradebook import layout")
def get_canvas(batch_id: str, canvas_id: str | None) -> Response:
    """Download the gradebook for a Canvas import, once the batch is finished"""
    return canvas_response(batch_id, canvas_id)


@blp.get("/<batch_id>/summary")
@instructor_required
@refuses(404, 409)
@blp.response(200, {"type": "string"}, content_type="text/html",
              description="Scores histogram, pass rate per check, identical and slowest submissions")
def get_summary(batch_id: str) -> Response:
    """Show the class summary page, once the batch is finished"""
    return summary_response(batch_id)


def init_app(app: Flask, api: Api) -> None:
    """The size cap (config, else GRADER_MAX_BATCH_BYTES), the API's endpoints and the pages."""
    from grader.app import batch_pages

    app.config.setdefault("MAX_BATCH_BYTES", int(os.environ.get("GRADER_MAX_BATCH_BYTES") or DEFAULT_MAX_BATCH_BYTES))
    api.register_blueprint(blp)
    app.register_blueprint(batch_pages.bp)
