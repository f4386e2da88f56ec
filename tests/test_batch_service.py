"""Batches through a real `grader serve` (local sandbox): a class's zip in, progress, gradebooks and summary out.

A second server without workers keeps batches queued, so what is refused while a batch is still
grading, and uploads that store nothing, are checked without racing the grader.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import schemathesis
import test_web
from conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent
MAXIMIZE = ROOT / "assignments" / "maximize"
SOLUTION = (MAXIMIZE / "solutions" / "student_style.py").read_bytes()
MAX_BATCH_BYTES = 2_000_000

# path in the zip -> contents; the expected gradebook follows.
CLASS = {
    "hw1/alice.py": SOLUTION,
    "hw1/bob/notebook.ipynb": (MAXIMIZE / "solutions" / "lecture.ipynb").read_bytes(),
    "hw1/bob/notes.txt": b"not a submission: ignored beside the notebook\n",
    "hw1/carol.py": (MAXIMIZE / "samples" / "minimizes.py").read_bytes(),
    "hw1/dave.py": (MAXIMIZE / "samples" / "no_zero_grad.py").read_bytes(),
    "hw1/erin.py": b"# caf\xe9 au lait\n",
    "hw1/frank.py": SOLUTION.replace(b"import torch\n", b"import torch  # all my own work\n\n"),
    "hw1/grace.py": b"def z_fn(a, b, c)\n    return 0\n",
}
GRADEBOOK = [
    ["alice", "18", "18", "graded"],
    ["bob", "18", "18", "graded"],
    ["carol", "9", "18", "graded"],
    ["dave", "13", "18", "graded"],
    ["erin", "0", "18", "rejected"],
    ["frank", "18", "18", "graded"],
    ["grace", "0", "18", "error"],
]


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def start(grader_site, *args: str, ready: str) -> SimpleNamespace:
    site = grader_site(GRADER_MAX_BATCH_BYTES=str(MAX_BATCH_BYTES))
    tokens = {"student": site.token("student", "alice"), "instructor": site.token("instructor", "prof")}
    server = site.start("serve", "--sandbox", "local", *args)
    server.wait_ready(path=ready)
    return SimpleNamespace(url=server.url, tokens=tokens, server=server, site=site)


# The browser fixtures of the page tests, shared.
browser = test_web.browser
sign_in = test_web.sign_in


@pytest.fixture(scope="module")
def service(grader_site):
    started = start(grader_site, "--workers", "1", ready="/readyz")
    yield started
    started.site.stop()


@pytest.fixture(scope="module")
def idle(grader_site):
    """A server whose batches stay queued: it has no workers."""
    started = start(grader_site, "--workers", "0", ready="/healthz")
    yield started
    started.site.stop()


@pytest.fixture(scope="module")
def openapi(service):
    return schemathesis.openapi.from_url(f"{service.url}/api/v1/openapi.json")


def call(server, method: str, path: str, who: str = "instructor", **kwargs) -> requests.Response:
    url = path if path.startswith("http") else f"{server.url}{path}"
    return requests.request(method, url, headers={"Authorization": f"Bearer {server.tokens[who]}"}, timeout=60,
                            **kwargs)


def upload(server, data: bytes, who: str = "instructor", name: str = "hw1.zip", **form: str) -> requests.Response:
    return call(server, "POST", "/api/v1/batches", who, files={"file": (name, data, "application/zip")},
                data={"assignment": "maximize", **form})


def finished(server, url: str) -> dict:
    return wait_for(lambda: (body := call(server, "GET", url).json())["finished"] and body, 240, "the batch to finish",
                    interval=0.5)


@pytest.fixture(scope="module")
def graded(service):
    """The class uploaded once and graded: (the 202 answer, the finished batch)."""
    answer = upload(service, zip_of(CLASS))
    assert answer.status_code == 202, answer.text
    return answer, finished(service, answer.headers["Location"])


def test_the_upload_is_stored_and_queued_at_once(service, graded, openapi):
    answer, _ = graded
    openapi["/api/v1/batches"]["POST"].validate_response(answer)
    body = answer.json()
    assert answer.headers["Location"] == body["links"]["self"]
    assert body["counts"]["total"] == 7 and body["counts"]["rejected"] == 1
    assert body["counts"]["queued"] + body["counts"]["running"] + body["counts"]["done"] == 6
    students = {s["student"]: s for s in body["students"]}
    assert students["erin"]["status"] == students["erin"]["result"] == "rejected"
    assert "UTF-8" in students["erin"]["message"] and students["erin"]["submission_id"] is None
    assert students["bob"]["filename"] == "bob/notebook.ipynb"


def test_progress_counts_and_scores_once_finished(service, graded, openapi):
    _, body = graded
    openapi["/api/v1/batches/{batch_id}"]["GET"].validate_response(call(service, "GET", body["links"]["self"]))
    assert body["counts"] == {"total": 7, "queued": 0, "running": 0, "done": 6, "failed": 0, "rejected": 1}
    assert [[s["student"], s["score"], s["result"]] for s in body["students"]] == \
        [[student, float(score), status] for student, score, _, status in GRADEBOOK]
    assert "expected" in next(s for s in body["students"] if s["student"] == "grace")["message"]
    listed = {b["id"]: b for b in call(service, "GET", "/api/v1/batches").json()}
    assert listed[body["id"]]["finished"] and listed[body["id"]]["counts"] == body["counts"]


def test_each_student_is_a_stored_submission_graded_by_the_queue(service, graded):
    _, body = graded
    alice = next(s for s in body["students"] if s["student"] == "alice")
    stored = call(service, "GET", alice["links"]["submission"]).json()
    assert stored["status"] == "done" and stored["score"] == 18 and stored["filename"] == "alice.py"
    assert stored["submitted_by"] == "prof" and stored["report"]["submission_id"] == alice["submission_id"]
    assert call(service, "GET", f"{alice['links']['submission']}/file").content == SOLUTION


def test_the_gradebooks(service, graded):
    _, body = graded
    response = call(service, "GET", body["links"]["gradebook"])
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:4] == ["student", "score", "max_score", "status"] and rows[0][-1] == "message"
    assert [row[:4] for row in rows[1:]] == GRADEBOOK
    dave = dict(zip(rows[0], rows[4]))
    assert dave["test_maximize_random_inputs"] == "0" and dave["test_z_fn_lecture_values"] == "1"
    canvas = call(service, "GET", body["links"]["canvas"], params={"canvas_id": "4242"}).text.splitlines()
    assert canvas[0] == "Student,ID,SIS User ID,Section,An optimization loop that maximizes an output (4242)"
    assert canvas[3] == "carol,carol,,,9"


def test_the_summary_page(service, graded):
    _, body = graded
    response = call(service, "GET", body["links"]["summary"])
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert '<ul id="identical"><li>alice, frank</li></ul>' in page
    assert 'id="score-histogram"' in page and 'id="pass-rates"' in page
    alice = next(s for s in body["students"] if s["student"] == "alice")
    assert f'href="/submissions/{alice["submission_id"]}"' in page
    erin_row = page[page.index('data-student="erin"'):].split("</tr>")[0]
    assert "rejected" in erin_row and "href" not in erin_row


def test_students_are_refused_with_403(service, graded):
    _, body = graded
    for method, url, kwargs in [("GET", "/api/v1/batches", {}), ("GET", body["links"]["self"], {}),
                                ("GET", body["links"]["gradebook"], {}), ("GET", body["links"]["summary"], {}),
                                ("POST", "/api/v1/batches", {"files": {"file": ("a.zip", zip_of(CLASS))},
                                                             "data": {"assignment": "maximize"}})]:
        response = call(service, method, url, "student", **kwargs)
        assert response.status_code == 403, (url, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    anonymous = requests.get(f"{service.url}/api/v1/batches", timeout=30)
    assert anonymous.status_code == 401


def test_an_id_pattern_picks_canvas_ids(service):
    members = {"smithjane_123_9_hw1.py": SOLUTION, "doejohn_LATE_456_9_hw1.py": b"x = 1\n", "readme.py": b"x = 2\n"}
    answer = upload(service, zip_of(members), id_pattern=r"^(?P<name>[a-z]+)(?:_LATE)?_(?P<id>\d+)_")
    body = finished(service, answer.headers["Location"])
    assert [(s["student"], s["name"]) for s in body["students"]] == \
        [("123", "smithjane"), ("456", "doejohn"), ("readme", "readme")]
    assert body["warnings"] == ["readme.py: the id pattern does not match 'readme'; using it whole as the student id"]
    canvas = call(service, "GET", body["links"]["canvas"]).text.splitlines()
    assert canvas[1:3] == ["smithjane,123,,,18", "doejohn,456,,,0"]


@pytest.mark.parametrize(("kwargs", "status", "code", "says"), [
    ({"data": b"PK not really a zip"}, 422, "invalid_batch", "not a zip file"),
    ({"data": zip_of({})}, 422, "empty_batch", "holds no submissions"),
    ({"data": zip_of({"notes/readme.md": b"hi"})}, 422, "empty_batch", "holds no submissions"),
    ({"assignment": "no-such-assignment"}, 422, "unknown_assignment", "maximize"),
    ({"id_pattern": "(unclosed"}, 422, "invalid_batch", "bad id pattern"),
    ({"data": b"\0" * (MAX_BATCH_BYTES + 1)}, 413, "too_large", "at most"),
    ({"data": b"\0" * (MAX_BATCH_BYTES + 200_000)}, 413, "too_large", "at most"),
])
def test_unusable_uploads_are_4xx_and_store_nothing(idle, kwargs, status, code, says):
    before = call(idle, "GET", "/api/v1/batches").json()
    data = kwargs.pop("data", zip_of(CLASS))
    response = upload(idle, data, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and says in error["message"], error
    assert call(idle, "GET", "/api/v1/batches").json() == before


def test_a_request_without_the_zip_says_what_to_send(idle):
    response = call(idle, "POST", "/api/v1/batches", data={"assignment": "maximize"})
    assert response.status_code == 422 and "'file'" in response.json()["error"]["message"]


def test_results_wait_until_the_batch_is_finished(idle):
    body = upload(idle, zip_of(CLASS)).json()
    assert body["counts"] == {"total": 7, "queued": 6, "running": 0, "done": 0, "failed": 0, "rejected": 1}
    assert not body["finished"]
    for link in ("gradebook", "canvas", "summary"):
        response = call(idle, "GET", body["links"][link])
        assert response.status_code == 409 and response.json()["error"]["code"] == "batch_in_progress"
        assert "6 of 7 to go" in response.json()["error"]["message"]
    missing = call(idle, "GET", "/api/v1/batches/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_batch"


def test_the_openapi_document_describes_batches(service):
    doc = requests.get(f"{service.url}/api/v1/openapi.json", timeout=30).json()
    post = doc["paths"]["/api/v1/batches"]["post"]
    assert post["security"] == [{"bearerAuth": []}]
    assert {"202", "401", "403", "413", "422"} <= set(post["responses"])
    form = doc["components"]["schemas"]["BatchUpload"]
    assert set(form["properties"]) == {"file", "assignment", "id_pattern"} and "file" in form["required"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    gradebook = doc["paths"]["/api/v1/batches/{batch_id}/gradebook.csv"]["get"]["responses"]
    assert "text/csv" in gradebook["200"]["content"] and "409" in gradebook


def test_the_batch_page_fills_its_progress_bar(service, sign_in, tmp_path):
    page = sign_in("instructor")
    page.click("text=Batches")
    archive = tmp_path / "hw1.zip"
    archive.write_bytes(zip_of(CLASS))
    page.select_option("#assignment", "maximize")
    page.set_input_files("#file", str(archive))
    page.click("text=Upload and grade")
    page.wait_for_url(f"{service.url}/batches/*")
    page.wait_for_function("document.getElementById('progress').value === 7", timeout=240_000)
    assert page.inner_text("#percent") == "100%"
    assert page.get_attribute("#progress", "max") == "7"
    assert "6 graded" in page.inner_text("#counts") and "1 rejected" in page.inner_text("#counts")
    assert page.inner_text("tr[data-student=carol]").split("\t")[2:4] == ["graded", "9 / 18"]
    with page.expect_download() as download:
        page.click("text=Gradebook (CSV)")
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert [row[:4] for row in rows[1:]] == GRADEBOOK
    page.click("text=Class summary")
    assert page.inner_text("#identical") == "alice, frank"


def test_the_batch_pages_are_for_instructors(service, sign_in):
    page = sign_in("student")
    page.goto(f"{service.url}/batches")
    assert "this page is for instructors" in page.inner_text("[role=alert]")
