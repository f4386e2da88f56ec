"""One error shape for the whole service: `{"error": {"code", "message"}}`, or an HTML page for a browser.

Every refusal goes through `abort`, so a client can switch on `code` and show `message` as is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NoReturn

import flask_smorest
import marshmallow as ma
from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "too_large", 415: "unsupported_media_type", 422: "invalid_request", 500: "internal_error",
    503: "unavailable",
}


class ErrorDetailSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "stable and machine-readable, e.g. too_large"})
    message = ma.fields.String(required=True, metadata={"description": "what was wrong and what to do, for people"})


class ErrorSchema(ma.Schema):
    error = ma.fields.Nested(ErrorDetailSchema, required=True)


def abort(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> NoReturn:
    flask_smorest.abort(status, code=code, message=message, headers=dict(headers or {}))


def message_of(error: HTTPException) -> str:
    data = getattr(error, "data", None) or {}
    if "message" in data:
        return data["message"]
    if "messages" in data:  # webargs: {location: {field: [problems]}}
        return "; ".join(_validation_problems(data["messages"]))
    if error.code == 413:
        return "the request is too large (a submission may be at most a few megabytes)"
    return error.description or error.name


def _validation_problems(messages: Mapping, where: str = "") -> Iterator[str]:
    for key, value in messages.items():
        if isinstance(value, Mapping):
            yield from _validation_problems(value, where or str(key))
        else:
            problems = " ".join(map(str, value if isinstance(value, list) else [value]))
            yield f"{key} ({where}): {problems}" if where else f"{key}: {problems}"


def handle_http_exception(error: HTTPException):
    data = getattr(error, "data", None) or {}
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    message = message_of(error)
    if _wants_html():
        return render_template("web/error.html", status=error.code, title=error.name, message=message), \
            error.code, headers
    code = data.get("code") or CODES.get(error.code, "error")
    return jsonify(error={"code": code, "message": message}), error.code, headers


def _wants_html() -> bool:
    if request.path.startswith("/api/"):
        return False
    return request.blueprint == "web" or request.accept_mimetypes.best == "text/html"


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
