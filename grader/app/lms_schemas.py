"""Schemas of the LMS endpoints: marshmallow for answers and queries, as in `grader.app.schemas`.

The webhook's body is validated by the pydantic models of `grader.lms.webhook`, so its OpenAPI
description is generated from them (`webhook_components`), not mirrored here.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from grader.app.schemas import model_components
from grader.lms import INTEGRATION_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookFields, WebhookJson
from grader.lms_store import DELIVERY_KINDS, DELIVERY_STATES
from grader.store import JOB_STATUSES

SIGNATURE_PARAMETERS = [
    {"in": "header", "name": INTEGRATION_HEADER, "required": True, "description": "the integration's name",
     "schema": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"}},
    {"in": "header", "name": TIMESTAMP_HEADER, "required": True,
     "description": "Unix time in seconds, within 5 minutes of the grader's clock",
     "schema": {"type": "string", "pattern": r"^\d{1,12}$"}},
    {"in": "header", "name": SIGNATURE_HEADER, "required": True,
     "description": "`sha256=` and the hex HMAC-SHA256, keyed with the integration's secret, of the timestamp, "
                    "a `.` and the body bytes",
     "schema": {"type": "string", "pattern": r"^sha256=[0-9a-fA-F]{64}$"}},
]

WEBHOOK_BODY = {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/WebhookJson"}},
    "multipart/form-data": {"schema": {"$ref": "#/components/schemas/WebhookForm"}},
}}


def webhook_components() -> dict[str, dict]:
    """The webhook body's JSON form (WebhookJson) and multipart form (WebhookFields and the file)."""
    form = model_components(WebhookFields)["WebhookFields"]
    form = {**form, "title": "WebhookForm",
            "properties": {**form["properties"], "file": {
                "type": "string", "format": "binary", "description": "the notebook (.ipynb) or module (.py)"}},
            "required": [*form["required"], "file"]}
    return {**model_components(WebhookJson), "WebhookForm": form}


class LmsSubmissionLinksSchema(ma.Schema):
    self = fields.String(required=True, metadata={"description": "the submission (an instructor's token reads it)"})
    html = fields.String(required=True, metadata={"description": "the page that shows the report"})


class LmsSubmissionSchema(ma.Schema):
    id = fields.String(required=True, metadata={"description": "the submission's id in the grader"})
    integration = fields.String(required=True)
    external_id = fields.String(required=True)
    student = fields.String(required=True)
    assignment = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(JOB_STATUSES))
    duplicate = fields.Boolean(required=True, metadata={
        "description": "the external_id was sent before: this is the first submission, which is not graded again"})
    links = fields.Nested(LmsSubmissionLinksSchema, required=True)


class DeliveryAttemptSchema(ma.Schema):
    number = fields.Integer(required=True)
    started_at = fields.DateTime(required=True)
    duration = fields.Float(required=True, metadata={"description": "seconds"})
    ok = fields.Boolean(required=True)
    status_code = fields.Integer(required=True, allow_none=True, metadata={"description": "none: no answer"})
    retryable = fields.Boolean(required=True)
    error = fields.String(required=True, allow_none=True)
    response_excerpt = fields.String(required=True, metadata={"description": "the start of the answer's body"})


class DeliveryLinksSchema(ma.Schema):
    self = fields.String(required=True)
    resend = fields.String(required=True, metadata={"description": "POST here to send it again now"})
    submission = fields.String(required=True)


class DeliverySchema(ma.Schema):
    id = fields.String(required=True, metadata={"description": "sent as X-Grader-Delivery on every attempt"})
    integration = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(DELIVERY_KINDS),
                         metadata={"description": "callback: the signed report; lti_score: the AGS score"})
    submission_id = fields.String(required=True)
    external_id = fields.String(required=True)
    student = fields.String(required=True)
    target_url = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(DELIVERY_STATES))
    attempts = fields.Integer(required=True, metadata={"description": "since it was last queued"})
    total_attempts = fields.Integer(required=True)
    next_attempt_at = fields.DateTime(required=True, allow_none=True)
    last_status_code = fields.Integer(required=True, allow_none=True)
    last_error = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    delivered_at = fields.DateTime(required=True, allow_none=True)
    history = fields.List(fields.Nested(DeliveryAttemptSchema), required=True, metadata={"description": "every attempt"})
    links = fields.Nested(DeliveryLinksSchema, required=True)


class DeliveryQuerySchema(ma.Schema):
    state = fields.String(validate=validate.OneOf(DELIVERY_STATES))
    submission_id = fields.String(metadata={"description": "only this submission's deliveries"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
