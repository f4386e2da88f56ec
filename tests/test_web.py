"""The HTML pages in headless Chromium (Debian's package, driven by Playwright) against a live `grader serve`."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
LECTURE = ROOT / "assignments" / "maximize" / "solutions" / "lecture.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def service(grader_site):
    site = grader_site()
    tokens = {"student": site.token("student", "alice"), "instructor": site.token("instructor", "prof")}
    server = site.start("serve", "--sandbox", "none", "--workers", "1")
    server.wait_ready()
    yield SimpleNamespace(url=server.url, tokens=tokens)
    site.stop()


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def sign_in(service, browser):
    contexts = []

    def open_page(role: str):
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{service.url}/login")
        page.fill("#token", service.tokens[role])
        page.click("button[type=submit]")
        page.wait_for_url(f"{service.url}/")
        return page
    yield open_page
    for context in contexts:
        context.close()


def test_upload_a_notebook_and_see_the_score_appear(service, sign_in, tmp_path):
    page = sign_in("student")
    page.click("text=An optimization loop that maximizes an output")
    page.set_input_files("#file", str(LECTURE))
    page.click("text=Submit for grading")
    page.wait_for_url(f"{service.url}/submissions/*")
    page.wait_for_selector("#score", timeout=120_000)
    page.screenshot(path=str(tmp_path / "submission.png"), full_page=True)
    assert page.inner_text("#score") == "18 / 18"
    rows = page.locator("tr.test")
    assert rows.count() == 10 and page.locator("tr.test.passed").count() == 10
    hidden = page.locator("tr[data-check=test_z_fn_random_inputs]")
    assert "(hidden)" in hidden.inner_text() and "2/2" in hidden.inner_text()
    assert (tmp_path / "submission.png").stat().st_size > 10_000


def test_a_file_that_cannot_be_graded_is_refused_on_the_page(service, sign_in):
    page = sign_in("student")
    page.goto(f"{service.url}/assignments/maximize")
    page.set_input_files("#file", files=[{"name": "notes.ipynb", "mimeType": "application/json", "buffer": b"{oops"}])
    page.click("text=Submit for grading")
    alert = page.locator("[role=alert]")
    assert "notes.ipynb" in alert.inner_text()
    assert page.url == f"{service.url}/assignments/maximize"


def test_the_instructor_page_lists_recent_submissions_for_instructors_only(service, sign_in):
    student = sign_in("student")
    student.goto(f"{service.url}/instructor")
    assert "this page is for instructors" in student.inner_text("[role=alert]")
    instructor = sign_in("instructor")
    instructor.click("text=Recent submissions")
    table = instructor.inner_text("#submissions")
    assert "alice" in table and "lecture.ipynb" in table and "18 / 18" in table
    instructor.locator("#submissions a").first.click()
    assert instructor.inner_text("#score") == "18 / 18"


def test_pages_need_a_session_and_forms_need_its_csrf_token(service):
    anonymous = requests.get(f"{service.url}/instructor", allow_redirects=False, timeout=30)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    with requests.Session() as session:
        signed_in = session.post(f"{service.url}/login", data={"token": service.tokens["student"]}, timeout=30)
        assert signed_in.status_code == 200
        forged = session.post(f"{service.url}/assignments/maximize", files={"file": ("a.py", b"x = 1\n")},
                              timeout=30)
        assert forged.status_code == 400 and "reload the page" in forged.text
    refused = requests.post(f"{service.url}/login", data={"token": "grd_wrong"}, timeout=30)
    assert refused.status_code == 401 and "not valid" in refused.text
