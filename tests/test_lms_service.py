"""The LMS integration end to end: a real `grader serve` and a real local LMS (tests/lms_platform.py).

Webhooks are signed here with `hmac`, not with `grader.lms`, and the local LMS checks callbacks and
the tool's JWT (against the key set the service publishes) on its own, so a signing bug cannot hide
behind the same bug in the check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)
from sqlalchemy import text

from conftest import wait_for
from grader.lms import AttemptResult, Decision, SecretBox
from grader.lms.webhook import WebhookFields
from grader.lms_store import DeliveryBusy, LmsStore
from grader.report import AssignmentRef, Report, RunEnvironment, now
from grader.store import Store
from lms_platform import CallbackReceiver, LtiPlatformServer

ROOT = Path(__file__).resolve().parent.parent
GOOD = ROOT / "tests" / "submissions" / "good.py"
NO_ZERO_GRAD = ROOT / "assignments" / "maximize" / "samples" / "no_zero_grad.py"
HIDDEN_CHECK = "test_maximize_random_inputs"
# Retries in fractions of a second, so that backoff, giving up and re-sending fit in a test.
FAST_RETRIES = {"GRADER_LMS_RETRY_BASE": "0.2", "GRADER_LMS_RETRY_CAP": "0.5", "GRADER_LMS_RETRY_ATTEMPTS": "4",
                "GRADER_LMS_TIMEOUT": "2", "GRADER_LMS_POLL_SECONDS": "0.1"}


def add_integration(site, name: str, *args: str) -> str:
    """`grader lms add`, reading the secret where it is promised: alone on the last line of stdout."""
    result = site.run("lms", "add", name, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def signed(secret: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Grader-Timestamp": stamp, "X-Grader-Signature": f"sha256={digest}"}


def webhook_body(external_id: str, path: Path = GOOD, **fields) -> bytes:
    return json.dumps({"assignment": "maximize", "external_id": external_id, "student": "s-17",
                       "filename": path.name, "submission": base64.b64encode(path.read_bytes()).decode(),
                       **fields}).encode()


def post_webhook(url: str, secret: str, body: bytes, integration: str = "canvas", *,
                 content_type: str = "application/json", headers: dict | None = None) -> requests.Response:
    return requests.post(f"{url}/api/v1/lms/webhook", data=body, timeout=60, headers={
        "Content-Type": content_type, "X-Grader-Integration": integration, **signed(secret, body), **(headers or {})})


@pytest.fixture(scope="module")
def service(grader_site):
    site = grader_site(**FAST_RETRIES)
    secret = add_integration(site, "canvas")
    full_secret = add_integration(site, "canvas-staff", "--full-report")
    tokens = {"prof": site.token("instructor", "prof"), "alice": site.token("student", "alice")}
    server = site.start("serve", "--sandbox", "none", "--workers", "1")
    server.wait_ready()
    yield SimpleNamespace(site=site, url=server.url, server=server, secret=secret, full_secret=full_secret,
                          tokens=tokens)
    site.stop()


@pytest.fixture
def receiver(service):
    """A fresh LMS callback endpoint, verifying signatures made with the `canvas` integration's secret."""
    found = CallbackReceiver(service.secret)
    found.server.start()
    yield found
    found.server.stop()


@pytest.fixture(scope="module")
def openapi(service):
    return schemathesis.openapi.from_url(f"{service.url}/api/v1/openapi.json")


def api(service, path: str, who: str = "prof", method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, f"{service.url}{path}", headers={"Authorization": f"Bearer {service.tokens[who]}"},
                            timeout=30, **kwargs)


def deliveries_of(service, submission_id: str) -> list[dict]:
    return api(service, "/api/v1/lms/deliveries", params={"submission_id": submission_id}).json()


def settled(service, submission_id: str, count: int = 1) -> list[dict]:
    """The submission's deliveries once `count` of them exist and none is pending or sending."""
    def done():
        found = deliveries_of(service, submission_id)
        return len(found) == count and all(d["state"] in ("delivered", "gave_up") for d in found) and found
    return wait_for(done, 120, f"{count} settled deliveries of {submission_id}", interval=0.2)


def stored_submissions(service) -> set[str]:
    return {s["id"] for s in api(service, "/api/v1/submissions", params={"limit": 500}).json()}


# --- integrations ----------------------------------------------------------------------------------

def test_lms_add_shows_the_secret_once_and_keeps_it_encrypted(service):
    assert service.secret.startswith("whsec_") and len(service.secret) > 40
    with Store(f"sqlite:///{service.site.data_dir}/grader.db").engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT name, secret_encrypted FROM lms_integrations")).all())
    assert service.secret not in stored["canvas"]
    assert SecretBox(service.site.data_dir).decrypt(stored["canvas"]) == service.secret
    assert stat.S_IMODE((service.site.data_dir / "lms-secrets.key").stat().st_mode) == 0o600
    listing = service.site.run("lms", "list").stdout
    assert "canvas" in listing and "student view" in listing and "full report" in listing
    assert service.secret not in listing
    again = service.site.run("lms", "add", "canvas")
    assert again.returncode != 0 and "exists already" in again.stderr


def test_a_revoked_integration_is_refused(service):
    secret = add_integration(service.site, "old-lms")
    assert service.site.run("lms", "revoke", "old-lms").returncode == 0
    response = post_webhook(service.url, secret, webhook_body("revoked-1"), integration="old-lms")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unknown_integration"


# --- the webhook in, the callback out --------------------------------------------------------------

def test_a_signed_webhook_is_graded_and_its_report_called_back_signed(service, receiver, openapi):
    response = post_webhook(service.url, service.secret, webhook_body("canvas-1", NO_ZERO_GRAD,
                                                                      callback_url=receiver.url))
    assert response.status_code == 202, response.text
    openapi["/api/v1/lms/webhook"]["POST"].validate_response(response)
    answer = response.json()
    assert answer["duplicate"] is False and answer["external_id"] == "canvas-1" and answer["student"] == "s-17"
    assert response.headers["Location"] == answer["links"]["self"]
    (delivery,) = settled(service, answer["id"])
    assert delivery["state"] == "delivered" and delivery["kind"] == "callback" and delivery["total_attempts"] == 1
    (request,) = receiver.requests
    assert request.verdict == "delivered" and request.delivery_id == delivery["id"]
    payload = receiver.delivered[delivery["id"]]
    assert payload["event"] == "submission.graded" and payload["external_id"] == "canvas-1"
    assert payload["submission_url"] == answer["links"]["self"] and payload["student"] == "s-17"
    assert (payload["score"], payload["max_score"]) == (13, 18)
    hidden = {t["id"]: t for t in payload["report"]["tests"]}[HIDDEN_CHECK]
    assert hidden["status"] == "failed" and "zero_grad" not in hidden["output"]  # the student view
    graded = api(service, answer["links"]["self"].removeprefix(service.url)).json()
    assert graded["status"] == "done" and graded["score"] == 13


def test_an_integration_set_to_full_reports_gets_hidden_checks_output(service):
    receiver = CallbackReceiver(service.full_secret)
    with receiver.server:
        body = webhook_body("staff-1", NO_ZERO_GRAD, callback_url=receiver.url)
        answer = post_webhook(service.url, service.full_secret, body, "canvas-staff").json()
        (delivery,) = settled(service, answer["id"])
    hidden = {t["id"]: t for t in receiver.delivered[delivery["id"]]["report"]["tests"]}[HIDDEN_CHECK]
    assert "zero_grad" in hidden["output"]


def test_a_multipart_webhook_is_accepted_the_same_way(service, receiver):
    fields = {"assignment": "maximize", "external_id": "canvas-mp-1", "student": "s-18", "callback_url": receiver.url}
    prepared = requests.Request("POST", f"{service.url}/api/v1/lms/webhook", data=fields,
                                files={"file": ("good.py", GOOD.read_bytes())}).prepare()
    prepared.headers.update({"X-Grader-Integration": "canvas", **signed(service.secret, prepared.body)})
    response = requests.Session().send(prepared, timeout=60)
    assert response.status_code == 202, response.text
    (delivery,) = settled(service, response.json()["id"])
    assert receiver.delivered[delivery["id"]]["score"] == 18
    assert receiver.delivered[delivery["id"]]["student"] == "s-18"


def test_a_repeated_external_id_returns_the_first_submission_and_is_graded_once(service, receiver):
    bodies = [webhook_body("canvas-twice", GOOD, callback_url=receiver.url)] + [
        webhook_body("canvas-twice", NO_ZERO_GRAD, callback_url=receiver.url) for _ in range(5)]
    first = post_webhook(service.url, service.secret, bodies[0]).json()
    answers: list[dict] = []
    threads = [threading.Thread(target=lambda b=body: answers.append(post_webhook(service.url, service.secret,
                                                                                  b).json())) for body in bodies[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a["id"] for a in answers} == {first["id"]} and all(a["duplicate"] for a in answers)
    (delivery,) = settled(service, first["id"])
    assert [r.verdict for r in receiver.requests] == ["delivered"]
    assert receiver.delivered[delivery["id"]]["score"] == 18  # the first file, not a repeat's
    store = Store(f"sqlite:///{service.site.data_dir}/grader.db")
    assert len(store.submission(first["id"]).jobs) == 1
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM lms_submissions WHERE external_id = 'canvas-twice'")
                                  ).scalar() == 1
    store.close()


@pytest.mark.parametrize(("case", "status", "code", "says"), [
    ({"headers": {"X-Grader-Integration": ""}}, 401, "unsigned", "X-Grader-Integration"),
    ({"integration": "moodle-nope"}, 401, "unknown_integration", "grader lms add"),
    ({"secret": "whsec_wrong"}, 401, "invalid_signature", "signature mismatch"),
    ({"tamper": True}, 401, "invalid_signature", "signature mismatch"),
    ({"age": 301}, 401, "invalid_signature", "stale timestamp"),
    ({"age": -400}, 401, "invalid_signature", "in the future"),
    ({"headers": {"X-Grader-Signature": ""}}, 401, "invalid_signature", "missing X-Grader-Signature"),
    ({"headers": {"X-Grader-Signature": "md5=abc"}}, 401, "invalid_signature", "malformed"),
    ({"body": b"{not json"}, 400, "invalid_json", "not valid JSON"),
    ({"body": b"x" * (7 * 1024 * 1024 + 100_000)}, 413, "too_large", "limit"),
    ({"data": b"#" * (5 * 1024 * 1024 + 10)}, 413, "too_large", "limit"),
    ({"fields": {"student": None}}, 422, "invalid_webhook", "student"),
    ({"fields": {"callback_url": "ftp://lms.example/cb"}}, 422, "invalid_webhook", "callback_url"),
    ({"fields": {"surprise": 1}}, 422, "invalid_webhook", "surprise"),
    ({"fields": {"assignment": "no-such-assignment"}}, 422, "unknown_assignment", "maximize"),
    ({"fields": {"submission": "not base64!"}}, 422, "invalid_webhook", "base64"),
    ({"fields": {"filename": "notes.txt"}}, 422, "invalid_submission", ".ipynb"),
    ({"fields": {"lineitem": "https://lms.example/lineitems/1"}}, 422, "invalid_webhook", "--lti"),
])
def test_bad_webhooks_are_4xx_with_a_clear_message_and_store_nothing(service, case, status, code, says):
    before = stored_submissions(service)
    body = case.get("body")
    if body is None:
        fields = {"assignment": "maximize", "external_id": f"bad-{code}-{says}", "student": "s-1",
                  "filename": "good.py", "submission": base64.b64encode(case.get("data", GOOD.read_bytes())).decode(),
                  **case.get("fields", {})}
        body = json.dumps({k: v for k, v in fields.items() if v is not None}).encode()
    headers = {"Content-Type": "application/json", "X-Grader-Integration": case.get("integration", "canvas"),
               **signed(case.get("secret", service.secret), body, time.time() - case.get("age", 0)),
               **case.get("headers", {})}
    sent = body + b" " if case.get("tamper") else body
    response = requests.post(f"{service.url}/api/v1/lms/webhook", data=sent, headers=headers, timeout=60)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and says.lower() in error["message"].lower(), error
    assert stored_submissions(service) == before


def test_signed_webhooks_of_any_shape_get_a_documented_answer_and_never_a_server_error(service, openapi):
    """Schemathesis bodies, valid and invalid, past the signature check that otherwise stops them at 401."""
    operation = openapi["/api/v1/lms/webhook"]["POST"]
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

    @given(st.one_of([operation.as_strategy(mode, media_type="application/json") for mode in GenerationMode]))
    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answers(case):
        body = case.body if isinstance(case.body, bytes) else b"" if isinstance(case.body, NotSet) else \
            json.dumps(case.body).encode()
        response = post_webhook(service.url, service.secret, body)
        case.validate_response(response, checks=checks)
        assert response.status_code in (202, 400, 413, 422), response.text
    answers()
    assert " 500 " not in service.server.log() and "Traceback" not in service.server.log()


# --- the outbox ------------------------------------------------------------------------------------

def test_failed_callbacks_are_retried_with_backoff_and_every_attempt_is_visible(service, receiver, openapi):
    receiver.fail(2, status=503)
    answer = post_webhook(service.url, service.secret, webhook_body("canvas-retry", callback_url=receiver.url)).json()
    (delivery,) = settled(service, answer["id"])
    assert delivery["state"] == "delivered" and delivery["attempts"] == delivery["total_attempts"] == 3
    assert [(a["number"], a["status_code"], a["ok"], a["retryable"]) for a in delivery["history"]] == [
        (1, 503, False, True), (2, 503, False, True), (3, 200, True, False)]
    assert "503" in delivery["history"][0]["error"] and delivery["history"][2]["response_excerpt"] == "delivered"
    assert [r.verdict for r in receiver.requests] == ["failed on purpose"] * 2 + ["delivered"]
    assert len({r.delivery_id for r in receiver.requests}) == 1  # one delivery id on every attempt
    listing = api(service, "/api/v1/lms/deliveries", params={"state": "delivered"})
    openapi["/api/v1/lms/deliveries"]["GET"].validate_response(listing)
    assert delivery["id"] in {d["id"] for d in listing.json()}
    one = api(service, f"/api/v1/lms/deliveries/{delivery['id']}")
    openapi["/api/v1/lms/deliveries/{delivery_id}"]["GET"].validate_response(one)
    assert one.json()["history"] == delivery["history"]
    metrics = requests.get(f"{service.url}/metrics", timeout=30).text
    assert re.search(r'^grader_lms_deliveries\{state="delivered"\} [1-9]', metrics, re.MULTILINE)
    refused = api(service, "/api/v1/lms/deliveries", who="alice")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert requests.get(f"{service.url}/api/v1/lms/deliveries", timeout=30).status_code == 401


def test_a_delivery_gives_up_after_its_attempts_and_an_instructor_can_resend_it(service, receiver, openapi):
    receiver.fail(100, status=500)
    answer = post_webhook(service.url, service.secret, webhook_body("canvas-down", callback_url=receiver.url)).json()
    (delivery,) = settled(service, answer["id"])
    assert delivery["state"] == "gave_up" and delivery["total_attempts"] == 4  # GRADER_LMS_RETRY_ATTEMPTS
    assert "4 attempts failed" in delivery["last_error"] and delivery["next_attempt_at"] is None
    receiver.fail(0)
    resent = api(service, delivery["links"]["resend"].removeprefix(service.url), method="POST")
    assert resent.status_code == 202, resent.text
    openapi["/api/v1/lms/deliveries/{delivery_id}/resend"]["POST"].validate_response(resent)
    assert resent.json()["state"] in ("pending", "sending", "delivered")
    (delivery,) = settled(service, answer["id"])
    assert delivery["state"] == "delivered" and delivery["attempts"] == 1 and delivery["total_attempts"] == 5
    assert [a["number"] for a in delivery["history"]] == [1, 2, 3, 4, 5]
    assert list(receiver.delivered) == [delivery["id"]]
    missing = api(service, "/api/v1/lms/deliveries/no-such-delivery/resend", method="POST")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_delivery"


def test_a_permanent_refusal_is_not_retried(service, receiver):
    receiver.fail(1, status=410)
    answer = post_webhook(service.url, service.secret, webhook_body("canvas-gone", callback_url=receiver.url)).json()
    (delivery,) = settled(service, answer["id"])
    assert delivery["state"] == "gave_up" and delivery["total_attempts"] == 1
    assert "permanent failure" in delivery["last_error"] and delivery["last_status_code"] == 410


# --- LTI 1.3 ---------------------------------------------------------------------------------------

def test_lti_scores_go_to_the_line_item_with_a_jwt_checked_against_the_published_keys(service):
    platform = LtiPlatformServer(f"{service.url}/.well-known/jwks.json")
    with platform.server:
        registration = platform.registration()
        secret = add_integration(service.site, "moodle", "--lti", *[
            arg for key, value in registration.items() for arg in (f"--{key.replace('_', '-')}", value)])
        receiver = CallbackReceiver(secret)
        with receiver.server:
            body = webhook_body("moodle-1", NO_ZERO_GRAD, student="user-42", callback_url=receiver.url,
                                lineitem=platform.lineitem(7, "type_id=3"))
            response = post_webhook(service.url, secret, body, "moodle")
            assert response.status_code == 202, response.text
            deliveries = settled(service, response.json()["id"], count=2)
    assert {d["kind"]: d["state"] for d in deliveries} == {"callback": "delivered", "lti_score": "delivered"}
    (score,) = platform.scores
    assert score["lineitem"] == "7" and score["query"] == "type_id=3"
    document = score["document"]
    assert (document["userId"], document["scoreGiven"], document["scoreMaximum"]) == ("user-42", 13, 18)
    assert document["gradingProgress"] == "FullyGraded" and document["comment"] == "13/18"
    (claims,) = platform.assertions
    assert claims["iss"] == claims["sub"] == registration["client_id"] and platform.refusals == []
    published = requests.get(f"{service.url}/.well-known/jwks.json", timeout=30).json()
    assert [key["kty"] for key in published["keys"]] == ["RSA"] and "d" not in published["keys"][0]
    assert len(receiver.delivered) == 1


# --- documentation ---------------------------------------------------------------------------------

def test_the_openapi_document_describes_the_lms_endpoints(service):
    doc = requests.get(f"{service.url}/api/v1/openapi.json", timeout=30).json()
    hook = doc["paths"]["/api/v1/lms/webhook"]["post"]
    assert {"202", "400", "401", "413", "422"} <= set(hook["responses"]) and "security" not in hook
    assert set(hook["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert {p["name"] for p in hook["parameters"]} == {"X-Grader-Integration", "X-Grader-Timestamp",
                                                       "X-Grader-Signature"}
    schemas = doc["components"]["schemas"]
    assert set(schemas["WebhookJson"]["required"]) == {"assignment", "external_id", "student", "filename",
                                                       "submission"}
    assert "file" in schemas["WebhookForm"]["required"]
    listing = doc["paths"]["/api/v1/lms/deliveries"]["get"]
    assert listing["security"] == [{"bearerAuth": []}] and "403" in listing["responses"]
    assert {"202", "404", "409"} <= set(doc["paths"]["/api/v1/lms/deliveries/{delivery_id}/resend"]["post"]
                                        ["responses"])


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl")
def test_the_readme_curl_example_submits_to_the_service(service, receiver, tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Connect your LMS"):]
    (script,) = [block for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL) if "openssl dgst" in block]
    shutil.copy(GOOD, tmp_path / "maximize.py")
    for example, real in [("http://127.0.0.1:8000", service.url), ("whsec_paste-the-secret-here", service.secret),
                          ("https://lms.example/grader/callback", receiver.url)]:
        script = script.replace(example, real)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert answer["external_id"] == "canvas-1234" and answer["duplicate"] is False, answer
    (delivery,) = settled(service, answer["id"])
    assert receiver.delivered[delivery["id"]]["score"] == 18


# --- a killed service ------------------------------------------------------------------------------

def test_callbacks_survive_a_killed_service_and_arrive_exactly_once(grader_site):
    """The LMS is down, then answers slowly; the service is killed (SIGKILL) mid-delivery and restarted."""
    site = grader_site(**{**FAST_RETRIES, "GRADER_LMS_RETRY_ATTEMPTS": "1000", "GRADER_LMS_TIMEOUT": "3"})
    secret = add_integration(site, "canvas")
    token = site.token("instructor", "prof")
    receiver = CallbackReceiver(secret)
    receiver.server.start()
    receiver.server.stop()  # its port is known and closed: the LMS is down
    first = site.start("serve", "--sandbox", "none", "--workers", "1")
    first.wait_ready()
    ids = [post_webhook(first.url, secret, webhook_body(f"kill-{n}", callback_url=receiver.url)).json()["id"]
           for n in range(3)]

    def deliveries(url: str) -> list[dict]:
        return requests.get(f"{url}/api/v1/lms/deliveries", headers={"Authorization": f"Bearer {token}"},
                            timeout=30).json()
    wait_for(lambda: [d["total_attempts"] >= 2 for d in deliveries(first.url)] == [True] * 3, 120,
             "every callback to fail at least twice")
    receiver.lose_answers(1, delay=30)
    receiver.server.start()
    wait_for(lambda: receiver.requests, 30, "the LMS to receive a callback", interval=0.02)
    first.stop(signal.SIGKILL)  # while the sender waits for the answer: the delivery is left 'sending'
    in_flight = receiver.requests[0].delivery_id

    second = site.start("serve", "--sandbox", "none", "--workers", "1")
    second.wait_ready()
    wait_for(lambda: {d["state"] for d in deliveries(second.url)} == {"delivered"}, 120,
             "every callback to be delivered after the restart", interval=0.2)
    assert len(receiver.delivered) == 3
    assert sorted(p["external_id"] for p in receiver.delivered.values()) == ["kill-0", "kill-1", "kill-2"]
    assert sorted(p["submission_id"] for p in receiver.delivered.values()) == sorted(ids)
    verdicts = [(r.delivery_id, r.verdict) for r in receiver.requests]
    assert sorted(d for d, verdict in verdicts if verdict == "delivered") == sorted(receiver.delivered)
    # The one in flight when the service died came again, with its id: the LMS dropped the repeat.
    assert (in_flight, "duplicate") in verdicts
    assert all(v in ("delivered", "duplicate") for _, v in verdicts)
    store = Store(f"sqlite:///{site.data_dir}/grader.db")
    assert all(len(store.submission(i).jobs) == 1 for i in ids)  # graded once each
    store.close()
    site.stop()
    receiver.server.stop()


# --- the store, on SQLite and PostgreSQL -----------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def lms_store(request, tmp_path):
    url = f"sqlite:///{tmp_path}/grader.db" if request.param == "sqlite" else request.getfixturevalue("new_database")()
    store = Store(url)
    yield LmsStore(store, SecretBox(tmp_path))
    store.close()


def report_for(submission_id: str) -> Report:
    return Report(
        submission_id=submission_id, assignment=AssignmentRef(slug="maximize", version="1"), status="graded",
        score=12, max_score=18, tests=[], started_at=now(), finished_at=now(), execution_time=0.5,
        environment=RunEnvironment(grader="0", torch="2", python="3.11", sandbox="none"),
    )


def lms_submission(lms, integration, external_id: str, submission_id: str, **fields):
    return lms.add_submission(integration, WebhookFields(assignment="maximize", external_id=external_id,
                                                         student="s-1", **fields),
                              submission_id=submission_id, filename="a.py", content=b"x = 1\n",
                              submission_url=f"http://grader/{submission_id}")


def test_store_one_submission_per_external_id_even_at_once(lms_store):
    integration = lms_store.add_integration("canvas", "whsec_x")
    barrier, results = threading.Barrier(4), []

    def send(n: int) -> None:
        barrier.wait()
        results.append(lms_submission(lms_store, integration, "same", f"sub{n}"))
    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({row.submission_id for row, _ in results}) == 1
    assert len([job for _, job in results if job is not None]) == 1
    assert len(lms_store.store.submissions()) == 1


def test_store_a_report_queues_its_deliveries_in_its_transaction_and_one_sender_claims_each(lms_store):
    integration = lms_store.add_integration("canvas", "whsec_x")
    _, job_id = lms_submission(lms_store, integration, "e1", "sub1", callback_url="http://lms/cb")
    lms_store.store.register_worker("w", host="h", pid=1, sandbox="none", pool_size=1)
    lms_store.store.claim(job_id, "w")
    assert lms_store.deliveries() == []
    assert lms_store.store.finish(job_id, "w", report_for("sub1"), 0.5)
    (delivery,) = lms_store.deliveries()
    assert (delivery.kind, delivery.target_url, delivery.state) == ("callback", "http://lms/cb", "pending")
    assert json.loads(delivery.body)["score"] == 12

    barrier, claims = threading.Barrier(4), []

    def claim() -> None:
        barrier.wait()
        claims.append(lms_store.claim_next(timedelta(seconds=30)))
    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (claimed,) = [c for c in claims if c is not None]
    assert (claimed.id, claimed.attempts, claimed.number) == (delivery.id, 1, 1)
    assert SecretBox(lms_store.secrets.key_path.parent).decrypt(claimed.secret_encrypted) == "whsec_x"
    assert lms_store.claim_next(timedelta(seconds=30)) is None  # held under its lease
    failed = AttemptResult(False, 500, "HTTP 500", 0.1, retryable=True)
    assert lms_store.record_attempt(claimed, now(), failed, Decision("retry", retry_at=now() + timedelta(hours=1)))
    assert lms_store.delivery(delivery.id).state == "pending"
    assert lms_store.claim_next(timedelta(seconds=30)) is None  # not due yet
    assert lms_store.resend(delivery.id).state == "pending"
    again = lms_store.claim_next(timedelta(seconds=-1))  # a lease that has already run out
    assert (again.attempts, again.number) == (1, 2)
    taken_over = lms_store.claim_next(timedelta(seconds=30))
    assert taken_over.number == 3
    ok = AttemptResult(True, 200, None, 0.1)
    assert not lms_store.record_attempt(again, now(), ok, Decision("delivered"))  # its lease was lost
    assert lms_store.record_attempt(taken_over, now(), ok, Decision("delivered"))
    found = lms_store.delivery(delivery.id)
    assert found.state == "delivered" and found.delivered_at is not None
    assert [(a.number, a.status_code) for a in found.history] == [(1, 500), (2, 200), (3, 200)]
    assert lms_store.delivery_counts()["delivered"] == 1


def test_store_a_delivery_being_sent_cannot_be_resent(lms_store):
    integration = lms_store.add_integration("canvas", "whsec_x")
    _, job_id = lms_submission(lms_store, integration, "e1", "sub1", callback_url="http://lms/cb")
    lms_store.store.register_worker("w", host="h", pid=1, sandbox="none", pool_size=1)
    lms_store.store.claim(job_id, "w")
    lms_store.store.finish(job_id, "w", report_for("sub1"), 0.5)
    claimed = lms_store.claim_next(timedelta(seconds=30))
    with pytest.raises(DeliveryBusy):
        lms_store.resend(claimed.id)
    assert lms_store.resend("no-such-delivery") is None


def test_store_integration_names_are_checked_and_unique(lms_store):
    lms_store.add_integration("canvas", "whsec_x")
    with pytest.raises(ValueError, match="exists already"):
        lms_store.add_integration("canvas", "whsec_y")
    with pytest.raises(ValueError, match="letters, digits"):
        lms_store.add_integration("bad name", "whsec_y")
    assert os.path.exists(lms_store.secrets.key_path)
