"""Who is asking: bearer API tokens for the JSON API; the same tokens, once, behind a session for the pages.

A token has a role: `student` (submit, read its own submissions, hidden checks redacted) or
`instructor` (everything). Only a SHA-256 of each secret is stored (see `grader.auth`).
"""

from __future__ import annotations

import hmac
import secrets

from flask import request, session

from grader.app.errors import abort
from grader.auth import new_secret
from grader.app.extensions import store
from grader.store import Store, Submission, Token

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="grader"'}


def issue_token(target: Store, name: str, role: str) -> tuple[Token, str]:
    """Create a token and return it with its secret: the only time anyone sees the secret."""
    secret = new_secret()
    return target.add_token(name, role, secret), secret


def bearer_token() -> Token:
    """The token of an API request, or a 401 that says what to send."""
    header = request.headers.get("Authorization", "")
    if not header:
        abort(401, "unauthorized", "this needs an API token: send the header 'Authorization: Bearer <token>'"
              " (an instructor creates tokens with `grader token create`)", CHALLENGE)
    scheme, _, secret = header.partition(" ")
    token = store().token_for_secret(secret.strip()) if scheme.lower() == "bearer" and secret.strip() else None
    if token is None:
        abort(401, "invalid_token", "the API token is not valid (mistyped, revoked, or not a Bearer token)",
              CHALLENGE)
    return token


def session_token() -> Token | None:
    token_id = session.get("token_id")
    return store().token(token_id) if token_id is not None else None


def log_in(secret: str) -> Token | None:
    token = store().token_for_secret(secret.strip()) if secret.strip() else None
    if token is not None:
        session.clear()
        session["token_id"] = token.id
        csrf_token()
    return token


def log_out() -> None:
    session.clear()


def csrf_token() -> str:
    return session.setdefault("csrf", secrets.token_urlsafe(24))


def check_csrf() -> None:
    """Forms that change something carry the session's token, so another site cannot post them for you."""
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), csrf_token().encode()):
        abort(400, "bad_csrf_token", "the form expired: reload the page and send it again")


def can_read(token: Token, submission: Submission) -> bool:
    return token.role == "instructor" or submission.token_id == token.id
