"""Outgoing deliveries: one signed attempt at a time, and the policy deciding what follows each.

Persistence belongs to the store: a delivery row keeps the frozen body, its id (sent as
`X-Grader-Delivery` and `Idempotency-Key` on every attempt, so the receiver can drop a repeat
of a request whose answer was lost), the attempt count and the time of the next attempt.
Delivery is therefore at least once, and exactly once for a receiver that de-duplicates.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import requests

from grader import __version__
from grader.lms.signing import signed_headers
from grader.report import Report

DELIVERY_HEADER = "X-Grader-Delivery"
USER_AGENT = f"grader/{__version__}"
# 4xx answers that mean "not now" rather than "never".
RETRYABLE_4XX = frozenset({408, 429})
EXCERPT_CHARS = 500


@dataclass(frozen=True)
class RetryPolicy:
    """Defaults: 12 attempts over about 2.5 hours on average (at most 5), none more than an hour apart."""

    max_attempts: int = 12
    base: float = 30.0  # seconds: the ceiling of the first delay, doubled after each attempt
    cap: float = 3600.0
    timeout: float = 10.0  # seconds per attempt


@dataclass(frozen=True)
class AttemptResult:
    """One attempt, as logged for instructors."""

    ok: bool
    status_code: int | None
    error: str | None
    duration: float
    retryable: bool = False
    retry_after: float | None = None  # seconds the receiver asked us to wait (Retry-After)
    response_excerpt: str = ""


@dataclass(frozen=True)
class Decision:
    state: Literal["delivered", "retry", "gave_up"]
    retry_at: datetime | None = None
    reason: str = ""


def next_attempt_delay(
    attempt: int, base: float = RetryPolicy.base, cap: float = RetryPolicy.cap,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): "full jitter" exponential backoff.

    Uniform in [0, min(cap, base * 2**(attempt-1))], so many deliveries failing together (a receiver
    that was down) do not come back in lockstep.
    """
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    return jitter() * min(cap, base * 2 ** min(attempt - 1, 64))


def decide(
    attempts: int, result: AttemptResult, now: datetime | None = None, policy: RetryPolicy = RetryPolicy(),
    jitter: Callable[[], float] = random.random,
) -> Decision:
    """What follows attempt number `attempts` (counted since the delivery was last queued by hand)."""
    if result.ok:
        return Decision("delivered")
    if not result.retryable:
        return Decision("gave_up", reason=f"permanent failure: {result.error}")
    if attempts >= policy.max_attempts:
        return Decision("gave_up", reason=f"{attempts} attempts failed; last: {result.error}")
    delay = next_attempt_delay(attempts, policy.base, policy.cap, jitter)
    if result.retry_after is not None:
        delay = max(delay, min(result.retry_after, policy.cap))
    now = now or datetime.now(timezone.utc)
    return Decision("retry", retry_at=now + timedelta(seconds=delay), reason=result.error or "")


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def classify(response: requests.Response, duration: float) -> AttemptResult:
    """2xx delivered; 408, 429, 5xx worth another try; any other answer (redirects included) final."""
    code = response.status_code
    excerpt = response.content[:EXCERPT_CHARS].decode("utf-8", errors="replace")
    if 200 <= code < 300:
        return AttemptResult(True, code, None, duration, response_excerpt=excerpt)
    if 300 <= code < 400:
        error = f"HTTP {code}: redirect to {response.headers.get('Location')!r} not followed; configure the final URL"
    else:
        error = f"HTTP {code} {response.reason or ''}".rstrip()
    retryable = code in RETRYABLE_4XX or code >= 500
    return AttemptResult(
        False, code, error, duration, retryable=retryable,
        retry_after=_retry_after(response.headers.get("Retry-After"), time.time()), response_excerpt=excerpt,
    )


def exchange(send: Callable[[], requests.Response]) -> tuple[AttemptResult, requests.Response | None]:
    """Run one HTTP request and say how it went; network failures are results, never exceptions."""
    started = time.monotonic()
    try:
        response = send()
    except requests.Timeout:
        return AttemptResult(False, None, "timed out", time.monotonic() - started, retryable=True), None
    except requests.ConnectionError as exc:
        error = f"connection failed: {_root_cause(exc)}"
        return AttemptResult(False, None, error, time.monotonic() - started, retryable=True), None
    except requests.RequestException as exc:
        return AttemptResult(False, None, f"request failed: {exc}", time.monotonic() - started), None
    return classify(response, time.monotonic() - started), response


def attempt(send: Callable[[], requests.Response]) -> AttemptResult:
    """`exchange` for callers that need only the outcome."""
    return exchange(send)[0]


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or (exc.args and isinstance(exc.args[0], BaseException)):
        exc = exc.__cause__ or exc.args[0]
    return str(exc) or type(exc).__name__


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact, key-sorted JSON, identical on every attempt."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def deliver_callback(
    url: str, payload: dict[str, Any], secret: bytes | str, delivery_id: str, *,
    timeout: float = RetryPolicy.timeout, session: requests.Session | None = None, now: float | None = None,
) -> AttemptResult:
    """POST `payload` as signed JSON to `url` once; redirects are not followed (the signature is for this URL)."""
    body = encode(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: delivery_id,
        "Idempotency-Key": delivery_id,
        **signed_headers(secret, body, now),
    }
    http = session or requests
    return attempt(lambda: http.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False))


def callback_payload(
    report: Report, *, external_id: str, student: str, submission_url: str | None, full_report: bool = False,
) -> dict[str, Any]:
    """The callback's body: who and what, the score, and the report (the student view unless configured)."""
    view = report if full_report else report.student_view()
    return {
        "event": "submission.graded",
        "external_id": external_id,
        "student": student,
        "assignment": report.assignment.slug,
        "submission_id": report.submission_id,
        "submission_url": submission_url,
        "status": report.status,
        "score": report.score,
        "max_score": report.max_score,
        "report": json.loads(view.to_json(indent=None)),
    }
