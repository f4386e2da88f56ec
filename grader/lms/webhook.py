"""The webhook's request body: JSON (file as base64) or multipart (file as a part), validated up front.

Everything is checked before anything is stored, and each failure names the field and the fix,
so an LMS developer can act on a 4xx without reading the grader's logs.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Room for the fields beside the file in a JSON or multipart body.
FIELDS_ALLOWANCE = 64 * 1024


class WebhookError(ValueError):
    """A webhook body the service must refuse; `status` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def http_url(value: str | None) -> str | None:
    """Callbacks and line items are only ever http(s) URLs with a host."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


class WebhookFields(BaseModel):
    """What the LMS says about a submission: the JSON members or multipart form fields besides the file."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    assignment: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$", description="the assignment's slug")
    external_id: str = Field(
        min_length=1, max_length=200,
        description="the LMS's id for this submission: a repeat returns the first submission and is not graded again",
    )
    student: str = Field(
        min_length=1, max_length=200,
        description="the student's id in the LMS (for LTI passback: the platform's user id, the launch's `sub`)",
    )
    callback_url: str | None = Field(
        None, max_length=2048, description="where the signed report is POSTed once graded (http or https)",
    )
    lineitem: str | None = Field(
        None, max_length=2048,
        description="LTI 1.3 AGS line item URL: the score is also posted there when the integration is an LTI platform",
    )

    _urls = field_validator("callback_url", "lineitem")(http_url)

    @field_validator("external_id", "student", "callback_url", "lineitem")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        """Ids end up in databases and CSV files: control characters (NUL above all) are refused."""
        if value is not None and any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("must not contain control characters")
        return value


class WebhookJson(WebhookFields):
    """The JSON form of the webhook body."""

    filename: str = Field(min_length=1, max_length=255, description="the file's name: .py or .ipynb")
    submission: str = Field(description="the file's bytes, base64 (line breaks allowed)")


@dataclass(frozen=True)
class Webhook:
    """A validated webhook: its fields and the submitted file."""

    fields: WebhookFields
    filename: str
    data: bytes


def max_body_bytes(max_submission_bytes: int) -> int:
    """The largest webhook body worth reading for a submission cap (base64 is the larger form)."""
    return 4 * math.ceil(max_submission_bytes / 3) + FIELDS_ALLOWANCE


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}" for error in exc.errors()
    )


def _base_name(filename: str) -> str:
    name = PurePosixPath(filename.replace("\\", "/")).name
    if not name:
        raise WebhookError(f"filename: {filename!r} has no file name")
    return name


def _checked_size(data: bytes, max_bytes: int) -> bytes:
    if len(data) > max_bytes:
        raise WebhookError(f"submission: {len(data)} bytes, over the {max_bytes}-byte limit", status=413)
    return data


def parse_json(body: bytes, max_bytes: int) -> Webhook:
    """The JSON webhook body -> a `Webhook`, or `WebhookError` (400 not JSON, 413 too large, 422 invalid)."""
    if len(body) > max_body_bytes(max_bytes):
        raise WebhookError(f"body: {len(body)} bytes, too large for a {max_bytes}-byte submission", status=413)
    try:
        request = WebhookJson.model_validate_json(body)
    except ValidationError as exc:
        invalid = [error for error in exc.errors() if error["type"] == "json_invalid"]
        if invalid:
            raise WebhookError(f"body is not valid JSON: {invalid[0]['ctx']['error']}", status=400) from None
        raise WebhookError(_describe(exc)) from None
    try:
        data = base64.b64decode("".join(request.submission.split()), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookError("submission: not valid base64 (standard alphabet, with padding)") from None
    fields = WebhookFields.model_validate(request.model_dump(include=set(WebhookFields.model_fields)))
    return Webhook(fields, _base_name(request.filename), _checked_size(data, max_bytes))


def parse_form(form: Mapping[str, str], filename: str | None, data: bytes, max_bytes: int) -> Webhook:
    """Multipart form fields and the `file` part -> a `Webhook`, or `WebhookError`."""
    if not filename:
        raise WebhookError("file: missing; send the submission as the multipart part named 'file' with a filename")
    try:
        fields = WebhookFields.model_validate(dict(form))
    except ValidationError as exc:
        raise WebhookError(_describe(exc)) from None
    return Webhook(fields, _base_name(filename), _checked_size(data, max_bytes))
