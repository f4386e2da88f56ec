"""The LMS over HTTP: the signed webhook in, the outbox for instructors, and the tool's public LTI keys.

The webhook authenticates by HMAC, not by token: the integration named in X-Grader-Integration
must have signed the exact body. Everything is checked before anything is stored. See docs/lms.md.
"""

from __future__ import annotations

from flask import Blueprint as FlaskBlueprint
from flask import Flask, current_app, jsonify, request, url_for
from flask_smorest import Blueprint

from grader import assignments
from grader.app.api import Api, instructor_required, refuses
from grader.app.errors import abort
from grader.app.extensions import lms, store
from grader.app.lms_schemas import (
    SIGNATURE_PARAMETERS, WEBHOOK_BODY, DeliveryQuerySchema, DeliverySchema, LmsSubmissionSchema,
    webhook_components,
)
from grader.app.submissions import check_intake, enqueue
from grader.grading import new_submission_id
from grader.lms import (
    INTEGRATION_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, ToolKeys, Webhook, WebhookError,
    max_body_bytes, parse_form, parse_json, verify,
)
from grader.lms_store import Delivery, DeliveryBusy, LmsIntegration, LmsSubmission

blp = Blueprint("lms", __name__, url_prefix="/api/v1/lms",
                description="Connect an LMS: signed submissions in, signed reports and LTI scores out (docs/lms.md).")
wellknown = FlaskBlueprint("wellknown", __name__)

WEBHOOK_ERRORS = {400: "invalid_json", 413: "too_large", 422: "invalid_webhook"}


@blp.post("/webhook")
@refuses(400, 401, 413, 422, 503)
@blp.doc(parameters=SIGNATURE_PARAMETERS, requestBody=WEBHOOK_BODY)
@blp.response(202, LmsSubmissionSchema, description="Stored and queued, or, for an external_id sent before, the "
              "first submission", headers={"Location": {"description": "the submission", "schema": {"type": "string"}}})
def webhook():
    """Submit for an LMS, signed with the integration's secret

    JSON with the file in base64, or multipart with the file as the part `file`. The signature,
    the fields and the file are checked before anything is stored; an external_id sent before
    answers with its first submission, which is never graded twice. Once graded, the report is
    POSTed to `callback_url` and, for an LTI platform, the score to `lineitem`."""
    integration, body = _signed_by()
    hook = _webhook(body)
    try:
        assignments.get(hook.fields.assignment)
    except assignments.UnknownAssignment as exc:
        abort(422, "unknown_assignment", f"assignment: {exc}")
    if hook.fields.lineitem and not integration.lti:
        abort(422, "invalid_webhook", f"lineitem: {integration.name} is not an LTI platform; an administrator "
              "registers one with `grader lms add --lti` to pass scores back")
    filename = hook.filename[-255:]
    check_intake(hook.data, filename)
    submission_id = new_submission_id()
    row, job_id = lms().add_submission(
        integration, hook.fields, submission_id=submission_id, filename=filename, content=hook.data,
        submission_url=url_for("api.get_submission", submission_id=submission_id, _external=True))
    if job_id is not None:
        enqueue(job_id, submission_id)
    answer = _lms_submission(row, duplicate=job_id is None)
    return answer, 202, {"Location": answer["links"]["self"]}


@blp.get("/deliveries")
@instructor_required
@blp.arguments(DeliveryQuerySchema, location="query", as_kwargs=True)
@blp.response(200, DeliverySchema(many=True))
def list_deliveries(limit: int, state: str | None = None, submission_id: str | None = None):
    """List the outbox: reports and scores sent to LMSs, newest first, each with every attempt"""
    return [_delivery(found) for found in lms().deliveries(state=state, submission_id=submission_id, limit=limit)]


@blp.get("/deliveries/<delivery_id>")
@instructor_required
@refuses(404)
@blp.response(200, DeliverySchema)
def get_delivery(delivery_id: str):
    """Show one delivery and its attempts"""
    found = lms().delivery(delivery_id)
    if found is None:
        abort(404, "unknown_delivery", f"no delivery {delivery_id!r}")
    return _delivery(found)


@blp.post("/deliveries/<delivery_id>/resend")
@instructor_required
@refuses(404, 409)
@blp.response(202, DeliverySchema, description="Queued to be sent now")
def resend_delivery(delivery_id: str):
    """Send a delivery again, with a fresh attempt budget

    For a delivery that gave up, once the problem on the LMS side is fixed. It keeps its id, so a
    receiver that de-duplicates drops a re-sent delivery it had already processed."""
    try:
        found = lms().resend(delivery_id)
    except DeliveryBusy:
        abort(409, "delivery_busy", f"delivery {delivery_id} is being sent right now: see how that attempt ends")
    if found is None:
        abort(404, "unknown_delivery", f"no delivery {delivery_id!r}")
    return _delivery(found)


@wellknown.get("/.well-known/jwks.json")
def jwks():
    """The tool's public key set: LTI platforms verify the tool's client assertions with it."""
    response = jsonify(ToolKeys(current_app.config["DATA_DIR"]).jwks())
    response.cache_control.public = True
    response.cache_control.max_age = 300
    return response


def _signed_by() -> tuple[LmsIntegration, bytes]:
    """The integration that signed this request, and the body it signed; 401 (or 413) otherwise."""
    name = request.headers.get(INTEGRATION_HEADER, "").strip()
    if not name:
        abort(401, "unsigned", f"name the integration in the header {INTEGRATION_HEADER} and sign the request with"
              " its secret (see docs/lms.md)")
    integration = lms().integration(name)
    if integration is None:
        abort(401, "unknown_integration", f"{INTEGRATION_HEADER}: no integration named {name!r} (an administrator "
              "adds it with `grader lms add`)")
    limit = max_body_bytes(current_app.config["MAX_SUBMISSION_BYTES"])
    if (request.content_length or 0) > limit:
        abort(413, "too_large", f"the body is {request.content_length} bytes, over the {limit}-byte limit")
    request.max_content_length = limit
    body = request.get_data(cache=True)  # before request.form, so the signature covers the raw bytes
    try:
        verify(lms().secret(integration), request.headers.get(SIGNATURE_HEADER), request.headers.get(TIMESTAMP_HEADER),
               body)
    except SignatureError as exc:
        abort(401, "invalid_signature", str(exc))
    return integration, body


def _webhook(body: bytes) -> Webhook:
    max_bytes = current_app.config["MAX_SUBMISSION_BYTES"]
    try:
        if request.mimetype == "multipart/form-data":
            upload = request.files.get("file")
            return parse_form(request.form, upload.filename if upload else None, upload.read() if upload else b"",
                              max_bytes)
        return parse_json(body, max_bytes)
    except WebhookError as exc:
        abort(exc.status, WEBHOOK_ERRORS[exc.status], str(exc))


def _lms_submission(row: LmsSubmission, duplicate: bool) -> dict:
    submission = store().submission(row.submission_id)
    return {
        "id": row.submission_id,
        "integration": row.integration.name,
        "external_id": row.external_id,
        "student": row.student,
        "assignment": submission.assignment,
        "status": submission.job.status,
        "duplicate": duplicate,
        "links": {
            "self": url_for("api.get_submission", submission_id=row.submission_id, _external=True),
            "html": url_for("web.submission", submission_id=row.submission_id, _external=True),
        },
    }


def _delivery(delivery: Delivery) -> dict:
    row = delivery.lms_submission
    return {
        **{name: getattr(delivery, name) for name in (
            "id", "kind", "target_url", "state", "attempts", "total_attempts", "next_attempt_at", "last_status_code",
            "last_error", "created_at", "updated_at", "delivered_at", "history")},
        "integration": row.integration.name,
        "submission_id": row.submission_id,
        "external_id": row.external_id,
        "student": row.student,
        "links": {
            "self": url_for("lms.get_delivery", delivery_id=delivery.id, _external=True),
            "resend": url_for("lms.resend_delivery", delivery_id=delivery.id, _external=True),
            "submission": url_for("api.get_submission", submission_id=row.submission_id, _external=True),
        },
    }


def init_app(app: Flask, api: Api) -> None:
    for name, schema in webhook_components().items():
        api.spec.components.schema(name, schema)
    api.register_blueprint(blp)
    app.register_blueprint(wellknown)
