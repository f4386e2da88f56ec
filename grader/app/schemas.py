"""The API's request and response schemas: they validate requests and generate the OpenAPI document.

The report itself is described by its pydantic model (`grader.report`), the schema workers
validate it against, converted for OpenAPI 3.0 by `report_components`.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate
from pydantic import BaseModel

from grader.report import Report
from grader.store import JOB_STATUSES

MAX_WAIT_SECONDS = 300
REPORT_REF = "#/components/schemas/Report"


class CheckSchema(ma.Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    function = fields.String(required=True, metadata={"description": "the API function the check grades"})
    points = fields.Float(required=True)
    visibility = fields.String(required=True, validate=validate.OneOf(["visible", "hidden"]))


class AssignmentLinksSchema(ma.Schema):
    self = fields.String(required=True)
    starter = fields.String(required=True, allow_none=True, metadata={"description": "the starter notebook"})
    submissions = fields.String(required=True, metadata={"description": "POST a submission here"})
    html = fields.String(required=True, metadata={"description": "the upload page"})


class AssignmentSchema(ma.Schema):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    version = fields.String(required=True)
    max_score = fields.Float(required=True)
    functions = fields.List(fields.String(), required=True, metadata={"description": "what a submission defines"})
    checks = fields.List(fields.Nested(CheckSchema), required=True)
    links = fields.Nested(AssignmentLinksSchema, required=True)


class AssignmentDetailSchema(AssignmentSchema):
    description = fields.String(required=True)


class UploadSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "the notebook (.ipynb) or module (.py)"},
                  error_messages={"required": "attach the notebook (.ipynb) or module (.py) as the field 'file'"})


class SubmitQuerySchema(ma.Schema):
    wait = fields.Float(
        load_default=0.0, validate=validate.Range(min=0, max=MAX_WAIT_SECONDS),
        metadata={"description": "seconds to wait for the report before answering 202 with the job's URL"},
    )


class SubmissionQuerySchema(ma.Schema):
    assignment = fields.String(metadata={"description": "only this assignment's submissions"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class SubmissionLinksSchema(ma.Schema):
    self = fields.String(required=True)
    html = fields.String(required=True, metadata={"description": "the page that shows the report"})
    file = fields.String(required=True, metadata={"description": "the submitted file, byte for byte"})


class SubmissionSchema(ma.Schema):
    id = fields.String(required=True)
    assignment = fields.String(required=True)
    filename = fields.String(required=True)
    size = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    submitted_at = fields.DateTime(required=True)
    submitted_by = fields.String(required=True, allow_none=True, metadata={"description": "the token's name"})
    status = fields.String(required=True, validate=validate.OneOf(JOB_STATUSES),
                           metadata={"description": "queued, running, done (see report) or failed (see error)"})
    score = fields.Float(required=True, allow_none=True)
    max_score = fields.Float(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True, metadata={"description": "why grading failed"})
    report = fields.Raw(required=True, allow_none=True, metadata={
        "allOf": [{"$ref": REPORT_REF}],
        "description": "the report once status is done; a student's copy has hidden checks' output redacted",
    })
    links = fields.Nested(SubmissionLinksSchema, required=True)


def report_components() -> dict[str, dict]:
    """The report's JSON schema and its parts as OpenAPI 3.0 components."""
    return model_components(Report)


def model_components(model: type[BaseModel]) -> dict[str, dict]:
    """A pydantic model's JSON schema (by alias) and its parts as OpenAPI 3.0 components, under their names."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    components = schema.pop("$defs", {})
    components[model.__name__] = schema
    return {name: _openapi30(part) for name, part in components.items()}


def _openapi30(node: Any) -> Any:
    """JSON Schema as pydantic writes it -> OpenAPI 3.0: `const` becomes an enum, `X | None` becomes nullable."""
    if isinstance(node, list):
        return [_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _openapi30(value) for key, value in node.items()}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    options = node.get("anyOf", [])
    if {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        del node["anyOf"]
        node.update(rest[0] if len(rest) == 1 and "$ref" not in rest[0] else {"anyOf": rest})
        node["nullable"] = True
    return node
