"""The JSON API under /api/v1, documented at /api/v1/openapi.json by the schemas that validate it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from http import HTTPStatus

import flask_smorest
from flask import Flask, Response, g, send_file, url_for
from flask_smorest import Blueprint

from grader import assignments
from grader.app.auth import bearer_token
from grader.app.errors import ErrorSchema, abort
from grader.app.extensions import store
from grader.app.schemas import (
    AssignmentDetailSchema, AssignmentSchema, SubmissionQuerySchema, SubmissionSchema, SubmitQuerySchema,
    UploadSchema, report_components,
)
from grader.app.submissions import (
    assignment_or_404, readable_or_404, report_for, submit, wait_until_finished,
)
from grader.store import FINISHED, Submission, Token

blp = Blueprint("api", __name__, url_prefix="/api/v1",
                description="Submit work, follow its grading, read reports.")

NOTEBOOK_TYPE = "application/x-ipynb+json"


class Api(flask_smorest.Api):
    """flask-smorest documenting the service's error shape; `errors.init_app` handles errors app-wide."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        pass


def refuses(*statuses: int) -> Callable:
    """Document the error answers an operation gives (each in the error shape), beyond the default one."""
    def decorator(view: Callable) -> Callable:
        for status in statuses:
            view = blp.alt_response(status, response=HTTPStatus(status).name)(view)
        return view
    return decorator


def token_required(view: Callable) -> Callable:
    """Authenticate before anything else, so a request without a valid token learns only that."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        g.token = bearer_token()
        return view(*args, **kwargs)
    return refuses(401)(blp.doc(security=[{"bearerAuth": []}])(wrapped))


def instructor_required(view: Callable) -> Callable:
    """`token_required`, and the token must be an instructor's."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.token.role != "instructor":
            abort(403, "forbidden", "this needs an instructor's API token")
        return view(*args, **kwargs)
    return token_required(refuses(403)(wrapped))


@blp.get("/assignments")
@blp.response(200, AssignmentSchema(many=True))
def list_assignments():
    """List the assignments

    Public: what each asks a submission to define, its checks and their points."""
    return [_assignment(spec) for spec in assignments.all_assignments().values()]


@blp.get("/assignments/<slug>")
@refuses(404)
@blp.response(200, AssignmentDetailSchema)
def get_assignment(slug: str):
    """Show one assignment, with its description"""
    return _assignment(assignment_or_404(slug))


@blp.get("/assignments/<slug>/starter")
@refuses(404)
@blp.response(200, {"type": "object", "description": "a Jupyter notebook (nbformat 4)"}, content_type=NOTEBOOK_TYPE,
              description="The starter notebook")
def get_starter(slug: str) -> Response:
    """Download the starter notebook"""
    spec = assignment_or_404(slug)
    if not spec.starter_path.is_file():
        abort(404, "no_starter", f"{slug} has no starter notebook")
    return send_file(spec.starter_path, mimetype=NOTEBOOK_TYPE, as_attachment=True,
                     download_name=f"{slug}-starter.ipynb")


@blp.post("/assignments/<slug>/submissions")
@token_required
@refuses(404, 413, 503)
@blp.arguments(SubmitQuerySchema, location="query", as_kwargs=True)
@blp.arguments(UploadSchema, location="files", as_kwargs=True)
@blp.response(202, SubmissionSchema, description="Stored and queued (or still grading when ?wait ran out): "
              "follow Location", headers={"Location": {"description": "the submission", "schema": {"type": "string"}}})
@blp.alt_response(200, schema=SubmissionSchema, success=True,
                  description="Graded within ?wait: the report is in the body")
def create_submission(slug: str, wait: float, file):
    """Submit a notebook or module for grading

    The submission is stored before the answer. With `?wait=SECONDS` the request blocks until
    the report is ready (200) or the time is up (202). A file that cannot be graded at all
    (not a notebook, not UTF-8, too large) is refused with 413 or 422 and is not stored."""
    submission = submit(slug, file, g.token, origin="api")
    if wait > 0:
        submission = wait_until_finished(submission, wait)
    body = _submission(submission, g.token)
    if submission.job.status in FINISHED:
        return body, 200
    return body, 202, {"Location": body["links"]["self"]}


@blp.get("/submissions")
@token_required
@blp.arguments(SubmissionQuerySchema, location="query", as_kwargs=True)
@blp.response(200, SubmissionSchema(many=True))
def list_submissions(limit: int, assignment: str | None = None):
    """List recent submissions, newest first

    A student sees its own; an instructor sees everyone's."""
    own = None if g.token.role == "instructor" else g.token.id
    return [_submission(s, g.token) for s in store().submissions(token_id=own, assignment=assignment, limit=limit)]


@blp.get("/submissions/<submission_id>")
@token_required
@refuses(404)
@blp.response(200, SubmissionSchema)
def get_submission(submission_id: str):
    """Show a submission: its grading status and, once done, its report"""
    return _submission(readable_or_404(submission_id, g.token), g.token)


@blp.get("/submissions/<submission_id>/file")
@token_required
@refuses(404)
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/octet-stream",
              description="The submitted bytes")
def get_submission_file(submission_id: str) -> Response:
    """Download the submitted file, byte for byte"""
    submission = readable_or_404(submission_id, g.token)
    return Response(store().submission_content(submission.id), mimetype="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{submission.id}-{submission.filename}"'})


def _assignment(spec: assignments.Assignment) -> dict:
    return {
        **spec.model_dump(include={"slug", "title", "version", "description", "functions"}),
        "max_score": spec.max_score,
        "checks": [check.model_dump() for check in spec.checks],
        "links": {
            "self": url_for("api.get_assignment", slug=spec.slug, _external=True),
            "starter": url_for("api.get_starter", slug=spec.slug, _external=True)
            if spec.starter_path.is_file() else None,
            "submissions": url_for("api.create_submission", slug=spec.slug, _external=True),
            "html": url_for("web.assignment", slug=spec.slug, _external=True),
        },
    }


def _submission(submission: Submission, token: Token) -> dict:
    job = submission.job
    report = report_for(token, submission)
    return {
        "id": submission.id,
        "assignment": submission.assignment,
        "filename": submission.filename,
        "size": submission.size,
        "sha256": submission.sha256,
        "submitted_at": submission.created_at,
        "submitted_by": submission.submitted_by,
        "status": job.status,
        "score": report.score if report else None,
        "max_score": report.max_score if report else None,
        "error": job.error,
        "report": report.model_dump(mode="json", by_alias=True) if report else None,
        "links": {
            "self": url_for("api.get_submission", submission_id=submission.id, _external=True),
            "html": url_for("web.submission", submission_id=submission.id, _external=True),
            "file": url_for("api.get_submission_file", submission_id=submission.id, _external=True),
        },
    }


def init_app(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "grader")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/api/v1")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = Api(app)
    api.spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer",
        "description": "an API token from `grader token create --role student|instructor --name NAME`",
    })
    for name, schema in report_components().items():
        api.spec.components.schema(name, schema)
    api.register_blueprint(blp)
    from grader.app import batches  # it builds on this module, so it is loaded after it
    batches.init_app(app, api)
    from grader.app import lms  # it builds on this module too
    lms.init_app(app, api)
