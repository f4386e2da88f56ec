"""The LMS library against a real local LMS: signatures, webhook bodies, callback retries, LTI passback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import re
import stat
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from jwcrypto import jwk
from werkzeug.wrappers import Request, Response

from grader.lms import (
    AttemptResult, LtiPlatform, RetryPolicy, SecretBox, SecretBoxError, SignatureError, TokenCache, ToolKeys,
    Webhook, WebhookError, callback_payload, decide, deliver_callback, max_body_bytes, new_secret, next_attempt_delay,
    parse_form, parse_json, post_score, score_document, scores_url, sign, signed_headers, verify,
)
from grader.report import Report
from lms_platform import CallbackReceiver, LocalServer, LtiPlatformServer, json_app

SECRET = "whsec_test-secret"
BODY = b'{"assignment":"maximize","external_id":"42"}'
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z


# --- signing -------------------------------------------------------------------------------------

def test_signature_is_the_hmac_of_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1767225600", BODY) == f"sha256={expected}"
    assert sign(SECRET.encode(), "1767225600", BODY) == sign(SECRET, "1767225600", BODY)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_signature_matches_the_documented_openssl_recipe():
    """docs/lms.md tells LMS developers to sign with openssl; it must agree with the service."""
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET], input=b"1767225600." + BODY, capture_output=True, check=True,
    ).stdout.decode().split()[-1]
    assert sign(SECRET, "1767225600", BODY) == f"sha256={digest}"


def test_verify_accepts_a_fresh_signed_request():
    headers = signed_headers(SECRET, BODY, now=NOW)
    verify(SECRET, headers["X-Grader-Signature"], headers["X-Grader-Timestamp"], BODY, now=NOW + 299)
    verify(SECRET, headers["X-Grader-Signature"].upper().replace("SHA256=", "sha256="),
           headers["X-Grader-Timestamp"], BODY, now=NOW)


@pytest.mark.parametrize(("secret", "body", "now", "message"), [
    (SECRET, BODY + b" ", NOW, "signature mismatch"),
    ("whsec_other", BODY, NOW, "signature mismatch"),
    (SECRET, BODY, NOW + 301, "stale timestamp: 301 s old"),
    (SECRET, BODY, NOW - 301, "301 s in the future"),
])
def test_verify_rejects_tampering_wrong_secrets_and_old_or_future_timestamps(secret, body, now, message):
    headers = signed_headers(SECRET, BODY, now=NOW)
    with pytest.raises(SignatureError, match=message):
        verify(secret, headers["X-Grader-Signature"], headers["X-Grader-Timestamp"], body, now=now)


def test_a_replayed_signature_does_not_cover_a_new_timestamp():
    old = signed_headers(SECRET, BODY, now=NOW)
    with pytest.raises(SignatureError, match="mismatch"):
        verify(SECRET, old["X-Grader-Signature"], str(NOW + 1000), BODY, now=NOW + 1000)


@pytest.mark.parametrize(("signature", "timestamp", "message"), [
    (None, str(NOW), "missing X-Grader-Signature"),
    ("sha256=" + "0" * 64, "", "missing X-Grader-Timestamp"),
    ("sha1=" + "0" * 40, str(NOW), "malformed X-Grader-Signature"),
    ("sha256=xyz", str(NOW), "malformed X-Grader-Signature"),
    ("0" * 64, str(NOW), "malformed X-Grader-Signature"),
    ("sha256=" + "0" * 64, "2026-01-01T00:00:00Z", "malformed X-Grader-Timestamp"),
    ("sha256=" + "0" * 64, "-5", "malformed X-Grader-Timestamp"),
])
def test_verify_names_missing_and_malformed_headers(signature, timestamp, message):
    with pytest.raises(SignatureError, match=message):
        verify(SECRET, signature, timestamp, BODY, now=NOW)


def test_new_secrets_are_long_and_distinct():
    made = {new_secret() for _ in range(20)}
    assert len(made) == 20
    assert all(s.startswith("whsec_") and len(s) >= 40 for s in made)


# --- secrets at rest -----------------------------------------------------------------------------

def test_secret_box_round_trips_across_restarts_and_keeps_its_key_private(tmp_path):
    secret = new_secret()
    token = SecretBox(tmp_path).encrypt(secret)
    assert secret not in token
    assert SecretBox(tmp_path).decrypt(token) == secret  # a new process, the same key file
    assert stat.S_IMODE((tmp_path / SecretBox.KEY_FILE).stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [tmp_path / SecretBox.KEY_FILE]  # no staging file left behind


def test_secret_box_with_another_key_says_so(tmp_path):
    token = SecretBox(tmp_path / "a").encrypt(new_secret())
    with pytest.raises(SecretBoxError, match="key file was replaced"):
        SecretBox(tmp_path / "b").decrypt(token)


# --- webhook bodies ------------------------------------------------------------------------------

def webhook_json(**changes) -> bytes:
    document = {"assignment": "maximize", "external_id": "canvas-123", "student": "s-1",
                "callback_url": "https://lms.example/callback", "filename": "hw/maximize.ipynb",
                "submission": base64.encodebytes(b"x = 1\n" * 40).decode()}  # encodebytes adds line breaks
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not ...}).encode()


def test_webhook_json_gives_fields_and_the_decoded_file():
    hook = parse_json(webhook_json(), max_bytes=1000)
    assert hook.data == b"x = 1\n" * 40
    assert hook.filename == "maximize.ipynb"
    assert (hook.fields.assignment, hook.fields.external_id, hook.fields.student) == ("maximize", "canvas-123", "s-1")
    assert hook.fields.callback_url == "https://lms.example/callback"
    assert hook.fields.lineitem is None


@pytest.mark.parametrize(("body", "status", "message"), [
    (b'{"assignment": ', 400, "not valid JSON"),
    (b"[1, 2]", 422, "Input should be an object"),
    (webhook_json(student=..., external_id=""), 422, "external_id: String should have at least 1 character; "
                                                      "student: Field required"),
    (webhook_json(callback_url="file:///etc/passwd"), 422, "callback_url: Value error, must be an absolute http"),
    (webhook_json(lineitem="javascript:alert(1)"), 422, "lineitem: Value error"),
    (webhook_json(assignment="../etc"), 422, "assignment: String should match pattern"),
    (webhook_json(external_id="a\x00b"), 422, "external_id: Value error, must not contain control characters"),
    (webhook_json(callbackUrl="https://x"), 422, "callbackUrl: Extra inputs are not permitted"),
    (webhook_json(submission="not base64!"), 422, "submission: not valid base64"),
    (webhook_json(submission=base64.b64encode(b"x" * 1001).decode()), 413, "1001 bytes, over the 1000-byte limit"),
    (b" " * (max_body_bytes(1000) + 1), 413, "too large"),
])
def test_bad_webhook_bodies_are_refused_with_a_status_and_a_reason(body, status, message):
    with pytest.raises(WebhookError, match=message) as caught:
        parse_json(body, max_bytes=1000)
    assert caught.value.status == status


def test_multipart_webhook_fields_are_validated_the_same_way():
    fields = {"assignment": "maximize", "external_id": "7", "student": "s-1"}
    hook = parse_form(fields, "C:\\Users\\me\\solution.py", b"x = 1\n", max_bytes=1000)
    assert (hook.filename, hook.data, hook.fields.callback_url) == ("solution.py", b"x = 1\n", None)
    with pytest.raises(WebhookError, match="file: missing"):
        parse_form(fields, None, b"", max_bytes=1000)
    with pytest.raises(WebhookError, match="callback_url"):
        parse_form({**fields, "callback_url": "ftp://x"}, "a.py", b"x", max_bytes=1000)


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl")
def test_the_documented_curl_example_sends_a_webhook_the_library_accepts(tmp_path):
    """Runs the shell example of docs/lms.md against a stand-in endpoint that checks it with this library."""
    doc = (Path(__file__).parents[1] / "docs" / "lms.md").read_text()
    (script,) = [block for block in re.findall(r"```bash\n(.*?)```", doc, re.S) if "openssl dgst" in block]
    accepted: list[Webhook] = []

    @Request.application
    def endpoint(request):
        body = request.get_data()
        try:
            verify(SECRET, request.headers.get("X-Grader-Signature"), request.headers.get("X-Grader-Timestamp"), body)
            accepted.append(parse_json(body, max_bytes=5_000_000))
        except (SignatureError, WebhookError) as exc:
            return Response(str(exc), status=400)
        return Response("accepted", status=202)

    notebook = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1) * 30
    (tmp_path / "maximize.ipynb").write_text(notebook)
    with LocalServer(endpoint) as grader:
        script = script.replace("http://127.0.0.1:8000", grader.url).replace("whsec_paste-the-secret-here", SECRET)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True,
                              text=True, timeout=30)
    assert done.stdout == "accepted", done.stdout + done.stderr
    (hook,) = accepted
    assert (hook.fields.assignment, hook.fields.external_id, hook.filename) == ("maximize", "canvas-1234",
                                                                              "maximize.ipynb")
    assert hook.data == notebook.encode()


# --- backoff and decisions -----------------------------------------------------------------------

def test_backoff_grows_exponentially_up_to_the_cap_with_full_jitter():
    ceilings = [next_attempt_delay(n, base=30, cap=3600, jitter=lambda: 1.0) for n in range(1, 10)]
    assert ceilings == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert next_attempt_delay(5, jitter=lambda: 0.0) == 0
    assert next_attempt_delay(10_000, base=30, cap=3600, jitter=lambda: 1.0) == 3600  # no overflow
    for n in range(1, 15):
        assert 0 <= next_attempt_delay(n, base=30, cap=3600) <= min(3600, 30 * 2 ** (n - 1))
    with pytest.raises(ValueError):
        next_attempt_delay(0)


def test_default_policy_spreads_attempts_over_hours():
    policy = RetryPolicy()
    ceilings = sum(next_attempt_delay(n, policy.base, policy.cap, jitter=lambda: 1.0)
                   for n in range(1, policy.max_attempts))
    assert 2 * 3600 < ceilings / 2 < 4 * 3600  # the average total wait, with full jitter


FAILED = AttemptResult(False, 503, "HTTP 503", 0.1, retryable=True)
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_decisions_follow_the_result_and_the_attempt_budget():
    policy = RetryPolicy(max_attempts=3, base=10, cap=100)
    assert decide(1, AttemptResult(True, 200, None, 0.1), START, policy).state == "delivered"
    gone = decide(1, AttemptResult(False, 404, "HTTP 404 NOT FOUND", 0.1), START, policy)
    assert (gone.state, gone.reason) == ("gave_up", "permanent failure: HTTP 404 NOT FOUND")
    retry = decide(2, FAILED, START, policy, jitter=lambda: 1.0)
    assert (retry.state, retry.retry_at) == ("retry", START + timedelta(seconds=20))
    assert decide(3, FAILED, START, policy).state == "gave_up"
    waited = decide(1, AttemptResult(False, 429, "HTTP 429", 0.1, retryable=True, retry_after=90), START, policy,
                    jitter=lambda: 0.0)
    assert waited.retry_at == START + timedelta(seconds=90)


# --- callbacks against the local LMS -------------------------------------------------------------

@pytest.fixture
def receiver():
    lms = CallbackReceiver(SECRET)
    with lms.server:
        yield lms


PAYLOAD = {"event": "submission.graded", "external_id": "canvas-123", "score": 3.5, "max_score": 5}


def deliver_until_settled(receiver, delivery_id: str, policy: RetryPolicy, secret: str = SECRET):
    """What the service's outbox worker does, minus the waiting: attempt, decide, repeat."""
    attempts = []
    while True:
        now = datetime.now(timezone.utc)
        result = deliver_callback(receiver.url, PAYLOAD, secret, delivery_id, timeout=policy.timeout)
        attempts.append(result)
        decision = decide(len(attempts), result, now, policy)
        if decision.state != "retry":
            return decision, attempts
        ceiling = next_attempt_delay(len(attempts), policy.base, policy.cap, jitter=lambda: 1.0)
        assert now <= decision.retry_at <= now + timedelta(seconds=ceiling)


def test_a_callback_arrives_signed_once_with_its_delivery_id(receiver):
    result = deliver_callback(receiver.url, PAYLOAD, SECRET, "d-1")
    assert (result.ok, result.status_code, result.error) == (True, 200, None)
    assert receiver.delivered == {"d-1": PAYLOAD}
    (request,) = receiver.requests
    assert request.verdict == "delivered"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("grader/")


def test_first_failures_are_retried_until_delivered(receiver):
    receiver.fail(3, status=500)
    decision, attempts = deliver_until_settled(receiver, "d-2", RetryPolicy(max_attempts=5))
    assert decision.state == "delivered"
    assert [a.status_code for a in attempts] == [500, 500, 500, 200]
    assert all(a.retryable for a in attempts[:3])
    assert receiver.delivered == {"d-2": PAYLOAD}


def test_delivery_gives_up_after_the_attempt_budget(receiver):
    receiver.fail(10, status=502)
    decision, attempts = deliver_until_settled(receiver, "d-3", RetryPolicy(max_attempts=3))
    assert (decision.state, len(attempts)) == ("gave_up", 3)
    assert decision.reason == "3 attempts failed; last: HTTP 502 BAD GATEWAY"
    assert receiver.delivered == {}


@pytest.mark.parametrize("status", [400, 404, 410])
def test_a_client_error_is_permanent(receiver, status):
    receiver.fail(1, status=status)
    decision, attempts = deliver_until_settled(receiver, "d-4", RetryPolicy(max_attempts=5))
    assert (decision.state, len(attempts), attempts[0].retryable) == ("gave_up", 1, False)
    assert attempts[0].response_excerpt == "failed on purpose"


def test_a_wrong_secret_is_refused_by_the_lms_and_not_retried(receiver):
    decision, attempts = deliver_until_settled(receiver, "d-5", RetryPolicy(), secret="whsec_wrong")
    assert (decision.state, attempts[0].status_code) == ("gave_up", 401)
    assert receiver.requests[0].verdict == "bad signature"
    assert receiver.delivered == {}


def test_too_many_requests_waits_as_long_as_the_lms_asks(receiver):
    receiver.fail(1, status=429, headers={"Retry-After": "120"})
    result = deliver_callback(receiver.url, PAYLOAD, SECRET, "d-6")
    assert (result.retryable, result.retry_after) == (True, 120)
    assert decide(1, result, START, RetryPolicy()).retry_at >= START + timedelta(seconds=120)


def test_an_lms_that_goes_down_and_comes_back_gets_the_callback_once(receiver):
    receiver.server.stop()
    down = deliver_callback(receiver.url, PAYLOAD, SECRET, "d-7", timeout=2)
    assert (down.ok, down.retryable, down.status_code) == (False, True, None)
    assert down.error.startswith("connection failed")
    receiver.server.start()  # the same port
    assert deliver_callback(receiver.url, PAYLOAD, SECRET, "d-7").ok
    assert receiver.delivered == {"d-7": PAYLOAD}


def test_a_lost_answer_is_retried_and_the_lms_drops_the_duplicate(receiver):
    receiver.lose_answers(1, delay=2.0)
    decision, attempts = deliver_until_settled(receiver, "d-8", RetryPolicy(max_attempts=3, timeout=1.0))
    assert decision.state == "delivered"
    assert [a.error for a in attempts] == ["timed out", None]
    assert [r.verdict for r in receiver.requests] == ["delivered", "duplicate"]
    assert receiver.delivered == {"d-8": PAYLOAD}


def test_redirects_are_not_followed(receiver):
    receiver.fail(1, status=302, headers={"Location": "https://elsewhere.example/"})
    result = deliver_callback(receiver.url, PAYLOAD, SECRET, "d-9")
    assert (result.ok, result.retryable) == (False, False)
    assert "redirect to 'https://elsewhere.example/' not followed" in result.error


def test_callback_payload_carries_the_student_view_unless_configured():
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    report = Report(
        submission_id="sub-1", assignment={"slug": "maximize", "version": "1.0.0"}, status="graded",
        score=2, max_score=5, started_at=at, finished_at=at, execution_time=0.5,
        environment={"grader": "0.1.0", "torch": "2.13.0", "python": "3.11", "sandbox": "local"},
        tests=[{"id": "t", "name": "hidden", "function": "maximize", "score": 0, "max_score": 3,
                "status": "failed", "output": "expected 2, got -7", "visibility": "hidden"}],
    )
    student = callback_payload(report, external_id="e-1", student="s-1", submission_url="http://g/submissions/sub-1")
    assert {k: student[k] for k in ("event", "external_id", "student", "assignment", "score", "max_score")} == {
        "event": "submission.graded", "external_id": "e-1", "student": "s-1", "assignment": "maximize",
        "score": 2, "max_score": 5}
    assert "expected 2" not in json.dumps(student)
    full = callback_payload(report, external_id="e-1", student="s-1", submission_url=None, full_report=True)
    assert full["report"]["tests"][0]["output"] == "expected 2, got -7"
    assert Report.model_validate(full["report"]) == report


# --- LTI 1.3 -------------------------------------------------------------------------------------

@pytest.fixture
def tool_keys(tmp_path):
    return ToolKeys(tmp_path)


@pytest.fixture
def platform_server(tool_keys):
    with LocalServer(json_app(tool_keys.jwks())) as tool:
        platform = LtiPlatformServer(tool.url + "/.well-known/jwks.json")
        with platform.server:
            yield platform


def test_tool_keys_persist_privately_with_a_stable_kid(tmp_path, tool_keys):
    assert stat.S_IMODE(tool_keys.key_path.stat().st_mode) == 0o600
    again = ToolKeys(tmp_path)
    assert (again.kid, again.jwks()) == (tool_keys.kid, tool_keys.jwks())
    (published,) = tool_keys.jwks()["keys"]
    assert {"d", "p", "q"}.isdisjoint(published)  # public members only
    assert (published["kty"], published["alg"], published["use"]) == ("RSA", "RS256", "sig")
    assert jwk.JWK(**published).thumbprint() == tool_keys.kid
    assert ToolKeys(tmp_path / "other").kid != tool_keys.kid


def test_score_passback_end_to_end(platform_server, tool_keys):
    platform = LtiPlatform(**platform_server.registration())
    tokens = TokenCache()
    graded_at = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    score = score_document("lti-user-9", 3.5, 5, comment="3.5/5", timestamp=graded_at)
    lineitem = platform_server.lineitem(11, "type=score")
    result = post_score(platform, tool_keys, lineitem, score, tokens=tokens)
    assert (result.ok, result.status_code) == (True, 200), (result, platform_server.refusals)
    (claims,) = platform_server.assertions  # verified by the platform with the published key
    assert claims["iss"] == claims["sub"] == "grader-tool"
    assert claims["aud"] == platform_server.token_url
    assert 0 < claims["exp"] - claims["iat"] <= 300
    (posted,) = platform_server.scores
    assert (posted["lineitem"], posted["query"]) == ("11", "type=score")
    assert posted["document"] == {
        "userId": "lti-user-9", "scoreGiven": 3.5, "scoreMaximum": 5, "comment": "3.5/5",
        "activityProgress": "Completed", "gradingProgress": "FullyGraded",
        "timestamp": "2026-01-02T03:04:05.678+00:00",
    }
    assert post_score(platform, tool_keys, platform_server.lineitem(12), score, tokens=tokens).ok
    assert len(platform_server.assertions) == 1  # the token was reused


def test_an_expiring_or_revoked_token_is_replaced(platform_server, tool_keys):
    platform = LtiPlatform(**platform_server.registration())
    score = score_document("u", 1, 1)
    platform_server.token_lifetime = 30
    tokens = TokenCache(margin=60)  # a token with less than a minute left is not used
    for _ in range(2):
        assert post_score(platform, tool_keys, platform_server.lineitem(1), score, tokens=tokens).ok
    assert len(platform_server.assertions) == 2
    platform_server.token_lifetime = 3600
    tokens = TokenCache()
    assert post_score(platform, tool_keys, platform_server.lineitem(1), score, tokens=tokens).ok
    platform_server.revoke_tokens()
    assert post_score(platform, tool_keys, platform_server.lineitem(1), score, tokens=tokens).ok
    assert len(platform_server.assertions) == 4
    assert platform_server.refusals == ["invalid_token: unknown or expired access token"]


def test_the_platform_refuses_a_key_it_was_not_given(platform_server, tmp_path):
    impostor = ToolKeys(tmp_path / "impostor")
    platform = LtiPlatform(**platform_server.registration())
    result = post_score(platform, impostor, platform_server.lineitem(1), score_document("u", 1, 1), tokens=TokenCache())
    assert (result.ok, result.status_code, result.retryable) == (False, 401, False)
    assert result.error.startswith("token endpoint: HTTP 401")
    assert "invalid_client" in result.error
    assert platform_server.scores == []


def test_the_platform_refuses_an_assertion_for_another_audience(platform_server, tool_keys):
    platform = LtiPlatform(**platform_server.registration(), audience="https://other.example/token")
    result = post_score(platform, tool_keys, platform_server.lineitem(1), score_document("u", 1, 1),
                        tokens=TokenCache())
    assert "Audience doesn't match" in result.error
    assert platform_server.scores == []


def test_an_unreachable_platform_is_worth_retrying(platform_server, tool_keys):
    platform = LtiPlatform(**platform_server.registration())
    platform_server.server.stop()
    result = post_score(platform, tool_keys, platform_server.lineitem(1), score_document("u", 1, 1),
                        tokens=TokenCache(), timeout=2)
    assert (result.ok, result.retryable) == (False, True)
    assert result.error.startswith("token endpoint: connection failed")


def test_scores_url_appends_to_the_path_and_keeps_the_query():
    assert scores_url("https://lms.example/api/lti/courses/1/line_items/2?x=1") == \
        "https://lms.example/api/lti/courses/1/line_items/2/scores?x=1"
    assert scores_url("https://lms.example/lineitems/2/") == "https://lms.example/lineitems/2/scores"


def test_score_documents_refuse_impossible_scores():
    with pytest.raises(ValueError):
        score_document("u", -1, 5)
    with pytest.raises(ValueError):
        score_document("u", 1, 0)
    assert "comment" not in score_document("u", 1, 5)


def test_lti_platform_urls_must_be_http():
    with pytest.raises(ValueError, match="token_url"):
        LtiPlatform(issuer="i", client_id="c", token_url="ftp://x/token", jwks_url="https://x/jwks", deployment_id="d")
