"""LTI 1.3 Assignment and Grade Services: score passback to a platform (Canvas, Moodle, ...).

The tool authenticates with a JWT signed by its own RSA key (the LTI security framework's
client-credentials grant); the platform checks it against the key set the tool publishes at
`/.well-known/jwks.json`, answers with an access token, and the tool POSTs the score to the
line item's `/scores` endpoint with it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwk
from pydantic import BaseModel, ConfigDict, Field, field_validator

from grader.lms.files import private_file
from grader.lms.outbox import AttemptResult, RetryPolicy, attempt, exchange
from grader.lms.webhook import http_url

SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300  # seconds
DEFAULT_TOKEN_LIFETIME = 300  # seconds, when the platform's answer has no expires_in


def _new_rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class ToolKeys:
    """The tool's RSA signing key: made on first use, kept in the data directory (mode 0600).

    Its `kid` is the RFC 7638 thumbprint of the public key, so it is stable across restarts and
    machines sharing the data directory, and changes only with the key.
    """

    KEY_FILE = "lti-private-key.pem"

    def __init__(self, data_dir: Path | str):
        self.key_path = Path(data_dir) / self.KEY_FILE
        self.private_pem = private_file(self.key_path, _new_rsa_pem)
        self._key = jwk.JWK.from_pem(self.private_pem)
        self.kid: str = self._key.thumbprint()

    def jwks(self) -> dict[str, Any]:
        """The public key set to serve at /.well-known/jwks.json."""
        public = self._key.export_public(as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}


class LtiPlatform(BaseModel):
    """A platform registered with `grader lms add --lti`: what its administrator gave for this tool."""

    model_config = ConfigDict(str_strip_whitespace=True)

    issuer: str = Field(min_length=1, description="the platform's issuer (`iss` of its launches)")
    client_id: str = Field(min_length=1, description="the tool's client id on the platform")
    token_url: str = Field(description="the platform's OAuth 2 token endpoint")
    jwks_url: str = Field(description="the platform's public key set (to verify its launches)")
    deployment_id: str = Field(min_length=1)
    audience: str | None = Field(None, description="`aud` for the client assertion when not the token URL")

    _urls = field_validator("token_url", "jwks_url")(http_url)


def client_assertion(platform: LtiPlatform, keys: ToolKeys, now: float | None = None) -> str:
    """The RS256 JWT proving the tool's identity to the token endpoint (iss = sub = client id)."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": platform.client_id,
        "sub": platform.client_id,
        "aud": platform.audience or platform.token_url,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, keys.private_pem, algorithm="RS256", headers={"kid": keys.kid})


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # Unix time
    scope: str


class TokenError(Exception):
    """The token endpoint refused or failed; `result` is the attempt to log and decide on."""

    def __init__(self, result: AttemptResult):
        super().__init__(result.error)
        self.result = result


def _oauth_error(excerpt: str) -> str:
    """The OAuth error code and description in a token endpoint's refusal, if it gave them."""
    try:
        body = json.loads(excerpt)
        parts = [body["error"], body.get("error_description")]
    except (ValueError, TypeError, KeyError):
        return ""
    return " (" + ": ".join(str(part) for part in parts if part) + ")"


def fetch_token(
    platform: LtiPlatform, keys: ToolKeys, scopes: tuple[str, ...] = (SCORE_SCOPE,), *,
    session: requests.Session | None = None, timeout: float = RetryPolicy.timeout,
) -> AccessToken:
    """A fresh access token by the client-credentials grant with a JWT assertion; `TokenError` if refused."""
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(platform, keys),
        "scope": " ".join(scopes),
    }
    http = session or requests
    asked = time.time()
    result, response = exchange(
        lambda: http.post(platform.token_url, data=form, timeout=timeout, headers={"Accept": "application/json"}))
    if not result.ok:
        reason = _oauth_error(result.response_excerpt)
        raise TokenError(replace(result, error=f"token endpoint: {result.error}{reason}"))
    try:
        answer = response.json()
        value = answer["access_token"]
        lifetime = float(answer.get("expires_in", DEFAULT_TOKEN_LIFETIME))
    except (ValueError, TypeError, KeyError):
        raise TokenError(replace(result, ok=False, error="token endpoint: the answer has no access_token")) from None
    return AccessToken(value, asked + lifetime, answer.get("scope", form["scope"]))


class TokenCache:
    """Access tokens per platform and scope set, reused until `margin` seconds before they expire."""

    def __init__(self, margin: float = 60.0):
        self.margin = margin
        self._tokens: dict[tuple[str, str, tuple[str, ...]], AccessToken] = {}
        self._lock = threading.Lock()

    def get(self, platform: LtiPlatform, keys: ToolKeys, scopes: tuple[str, ...] = (SCORE_SCOPE,), *,
            session: requests.Session | None = None, timeout: float = RetryPolicy.timeout) -> AccessToken:
        key = (platform.token_url, platform.client_id, scopes)
        with self._lock:
            token = self._tokens.get(key)
        if token is None or token.expires_at - self.margin <= time.time():
            token = fetch_token(platform, keys, scopes, session=session, timeout=timeout)
            with self._lock:
                self._tokens[key] = token
        return token

    def forget(self, platform: LtiPlatform, scopes: tuple[str, ...] = (SCORE_SCOPE,)) -> None:
        with self._lock:
            self._tokens.pop((platform.token_url, platform.client_id, scopes), None)


DEFAULT_TOKENS = TokenCache()


def score_document(
    user_id: str, score_given: float, score_maximum: float, comment: str | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """The AGS score for a graded submission; `timestamp` should be the grading time, so that a
    late delivery of an old grade never overrides a newer one on the platform."""
    if score_maximum <= 0 or score_given < 0:
        raise ValueError("scores must satisfy score_given >= 0 and score_maximum > 0")
    document: dict[str, Any] = {
        "userId": user_id,
        "scoreGiven": score_given,
        "scoreMaximum": score_maximum,
        "activityProgress": "Completed",
        "gradingProgress": "FullyGraded",
        "timestamp": (timestamp or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(
            timespec="milliseconds"),
    }
    if comment:
        document["comment"] = comment
    return document


def scores_url(lineitem_url: str) -> str:
    """The line item's /scores endpoint: `/scores` appended to the path, any query kept (Canvas adds one)."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def post_score(
    platform: LtiPlatform, keys: ToolKeys, lineitem_url: str, score: dict[str, Any], *,
    tokens: TokenCache | None = None, session: requests.Session | None = None,
    timeout: float = RetryPolicy.timeout,
) -> AttemptResult:
    """POST `score` (see `score_document`) to the line item once; a token the platform no longer
    accepts (401) is replaced and the score sent once more."""
    cache = tokens or DEFAULT_TOKENS
    http = session or requests
    body = json.dumps(score).encode()

    def send(token: AccessToken) -> AttemptResult:
        headers = {"Authorization": f"Bearer {token.value}", "Content-Type": SCORE_MEDIA_TYPE}
        return attempt(lambda: http.post(scores_url(lineitem_url), data=body, headers=headers, timeout=timeout,
                                         allow_redirects=False))

    try:
        result = send(cache.get(platform, keys, session=session, timeout=timeout))
        if result.status_code == 401:
            cache.forget(platform)
            result = send(cache.get(platform, keys, session=session, timeout=timeout))
    except TokenError as exc:
        return exc.result
    return result
