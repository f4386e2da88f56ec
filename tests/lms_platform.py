"""A local LMS for the LMS tests: real HTTP servers on 127.0.0.1 that check what the grader sends.

Deliberately independent of `grader.lms`: signatures are checked here with `hmac` and JWTs with
PyJWT against the key set the tool publishes, so a bug in the grader's signing cannot hide
behind the same bug in the check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"
ACTIVITY_PROGRESS = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING_PROGRESS = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}


class _QuietHandler(WSGIRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped server really stops answering.
    protocol_version = "HTTP/1.0"

    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class LocalServer:
    """A WSGI app on 127.0.0.1 in a thread; `stop()` closes the port, `start()` reopens the same one."""

    def __init__(self, app):
        self.app = app
        self.port = 0
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LocalServer":
        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True, request_handler=_QuietHandler)
        self.port = self._server.port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def json_app(document: dict):
    """A WSGI app answering every GET with `document` (the tool's published key set, for example)."""
    return Request.application(lambda request: Response(json.dumps(document), mimetype="application/json"))


@dataclass
class Received:
    """One request the callback receiver got, and what it made of it."""

    delivery_id: str | None
    headers: dict[str, str]
    body: bytes
    status: int
    verdict: str


@dataclass
class _Failures:
    count: int = 0
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)


class CallbackReceiver:
    """The LMS's callback endpoint: verifies the signature, de-duplicates by delivery id, records everything.

    `fail(n)` answers the next n requests with an error; `lose_answers(n, delay)` accepts the next n
    but answers only after `delay` seconds (longer than the sender waits), as when a response is lost.
    """

    def __init__(self, secret: str, tolerance: int = 300):
        self.secret = secret.encode()
        self.tolerance = tolerance
        self.requests: list[Received] = []
        self.delivered: dict[str, dict] = {}
        self._failures = _Failures()
        self._slow = 0
        self._delay = 0.0
        self._lock = threading.Lock()
        self.server = LocalServer(Request.application(self._handle))

    @property
    def url(self) -> str:
        return self.server.url + "/lms/callback"

    def fail(self, times: int, status: int = 500, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._failures = _Failures(times, status, headers or {})

    def lose_answers(self, times: int, delay: float) -> None:
        with self._lock:
            self._slow, self._delay = times, delay

    def _check(self, request: Request, body: bytes) -> str | None:
        timestamp = request.headers.get("X-Grader-Timestamp", "")
        signature = request.headers.get("X-Grader-Signature", "")
        expected = "sha256=" + hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return "bad signature"
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.tolerance:
            return "stale timestamp"
        if request.headers.get("Idempotency-Key") != request.headers.get("X-Grader-Delivery"):
            return "Idempotency-Key differs from X-Grader-Delivery"
        return None

    def _handle(self, request: Request) -> Response:
        body = request.get_data()
        delivery_id = request.headers.get("X-Grader-Delivery")
        with self._lock:
            failures, delay = self._failures, 0.0
            if failures.count > 0:
                failures.count -= 1
                status, verdict = failures.status, "failed on purpose"
            elif problem := self._check(request, body):
                status, verdict = 401, problem
            elif delivery_id in self.delivered:
                status, verdict = 200, "duplicate"
            else:
                self.delivered[delivery_id] = json.loads(body)
                status, verdict = 200, "delivered"
                if self._slow > 0:
                    self._slow -= 1
                    delay = self._delay
            self.requests.append(Received(delivery_id, dict(request.headers), body, status, verdict))
        time.sleep(delay)
        return Response(verdict, status=status, headers=failures.headers if verdict == "failed on purpose" else None)


class LtiPlatformServer:
    """An LTI 1.3 platform's token endpoint and line items, trusting the tool's key set at `tool_jwks_url`.

    The token endpoint verifies the client assertion the way a platform must: signature by the
    `kid` in the tool's published key set, RS256 only, `iss` = `sub` = client id, `aud` = token URL,
    `exp`/`iat` present and valid, `jti` never seen before.
    """

    def __init__(self, tool_jwks_url: str, client_id: str = "grader-tool", token_lifetime: int = 3600):
        self.tool_jwks_url = tool_jwks_url
        self.client_id = client_id
        self.token_lifetime = token_lifetime
        self.assertions: list[dict] = []  # the verified claims of every accepted client assertion
        self.refusals: list[str] = []
        self.scores: list[dict] = []
        self._tokens: dict[str, tuple[float, str]] = {}
        self._seen_jti: set[str] = set()
        self._lock = threading.Lock()
        self.server = LocalServer(Request.application(self._handle))

    @property
    def token_url(self) -> str:
        return self.server.url + "/token"

    def lineitem(self, number: int, query: str = "") -> str:
        return f"{self.server.url}/lineitems/{number}" + (f"?{query}" if query else "")

    def registration(self) -> dict[str, str]:
        """What the platform's administrator hands to the tool's administrator."""
        return {"issuer": self.server.url, "client_id": self.client_id, "token_url": self.token_url,
                "jwks_url": self.server.url + "/jwks", "deployment_id": "deployment-1"}

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def _handle(self, request: Request) -> Response:
        if request.path == "/jwks":
            return Response(json.dumps({"keys": []}), mimetype="application/json")
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        parts = request.path.strip("/").split("/")
        if request.method == "POST" and len(parts) == 3 and parts[0] == "lineitems" and parts[2] == "scores":
            return self._score(request, parts[1])
        return Response("not found", status=404)

    def _refuse(self, status: int, error: str, description: str) -> Response:
        with self._lock:
            self.refusals.append(f"{error}: {description}")
        return Response(json.dumps({"error": error, "error_description": description}), status=status,
                        mimetype="application/json")

    def _token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return self._refuse(400, "unsupported_grant_type", "expected client_credentials")
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return self._refuse(400, "invalid_request", "expected a jwt-bearer client assertion")
        if SCORE_SCOPE not in form.get("scope", "").split():
            return self._refuse(400, "invalid_scope", "the score scope was not asked for")
        assertion = form.get("client_assertion", "")
        try:
            key = jwt.PyJWKClient(self.tool_jwks_url, cache_keys=False).get_signing_key_from_jwt(assertion)
            claims = jwt.decode(
                assertion, key.key, algorithms=["RS256"], audience=self.token_url, issuer=self.client_id,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            return self._refuse(401, "invalid_client", str(exc))
        with self._lock:
            replayed = claims["jti"] in self._seen_jti
            self._seen_jti.add(claims["jti"])
        if claims["sub"] != self.client_id or replayed:
            return self._refuse(401, "invalid_client", "sub is not the client id, or jti was used before")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (time.time() + self.token_lifetime, form["scope"])
            self.assertions.append(claims)
        return Response(json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime,
                                    "scope": form["scope"]}), mimetype="application/json")

    def _score(self, request: Request, lineitem: str) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            expiry, scope = self._tokens.get(token, (0.0, ""))
        if expiry < time.time() or SCORE_SCOPE not in scope.split():
            return self._refuse(401, "invalid_token", "unknown or expired access token")
        if request.mimetype != SCORE_MEDIA_TYPE:
            return self._refuse(415, "invalid_request", f"expected {SCORE_MEDIA_TYPE}, got {request.mimetype}")
        problem = score_problem(request.get_json(force=True, silent=True))
        if problem:
            return self._refuse(400, "invalid_request", problem)
        with self._lock:
            self.scores.append({"lineitem": lineitem, "query": request.query_string.decode(),
                                "document": request.get_json(force=True)})
        return Response(json.dumps({"resultUrl": f"{self.server.url}/lineitems/{lineitem}/results/1"}),
                        mimetype="application/json")


def score_problem(document: Any) -> str | None:
    """What is wrong with an AGS score document, per the AGS 2.0 specification; None if nothing."""
    if not isinstance(document, dict):
        return "the body is not a JSON object"
    if not isinstance(document.get("userId"), str) or not document["userId"]:
        return "userId missing"
    given, maximum = document.get("scoreGiven"), document.get("scoreMaximum")
    if not isinstance(given, (int, float)) or given < 0:
        return "scoreGiven must be a number >= 0"
    if not isinstance(maximum, (int, float)) or maximum <= 0:
        return "scoreMaximum must be a number > 0"
    if document.get("activityProgress") not in ACTIVITY_PROGRESS:
        return "activityProgress invalid"
    if document.get("gradingProgress") not in GRADING_PROGRESS:
        return "gradingProgress invalid"
    try:
        stamped = datetime.fromisoformat(document.get("timestamp", ""))
    except (TypeError, ValueError):
        return "timestamp is not ISO 8601"
    return None if stamped.tzinfo else "timestamp has no time zone"
