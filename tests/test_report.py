"""The report: schema, renderings, and the student view's redaction."""

import json
from datetime import datetime, timezone

import jsonschema
import pytest

from grader.report import SCHEMA_ID, Report, json_schema, render_gradescope, render_html, render_text


@pytest.fixture
def report() -> Report:
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return Report(
        submission_id="abc",
        assignment={"slug": "maximize", "version": "1.0.0"},
        status="graded",
        score=2,
        max_score=5,
        tests=[
            {"id": "t1", "name": "visible one", "function": "z_fn", "score": 2, "max_score": 2, "status": "passed",
             "output": "", "visibility": "visible"},
            {"id": "t2", "name": "hidden one", "function": "maximize", "score": 0, "max_score": 3, "status": "failed",
             "output": "maximize(...) returned -7; expected 2 <script>", "visibility": "hidden"},
        ],
        notes=[{"kind": "magic", "cell": 2, "line": 1, "message": "IPython line not run: %matplotlib inline"}],
        started_at=at, finished_at=at, execution_time=0.5,
        environment={"grader": "0.1.0", "torch": "2.13.0", "python": "3.11", "sandbox": "local"},
    )


def test_json_matches_the_published_schema(report):
    document = json.loads(report.to_json())
    jsonschema.validate(document, json_schema())
    assert document["schema"] == SCHEMA_ID
    assert Report.model_validate_json(report.to_json()) == report


def test_schema_rejects_an_unknown_status(report):
    document = json.loads(report.to_json())
    document["tests"][0]["status"] = "sort-of"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, json_schema())


def test_student_view_redacts_hidden_output_but_keeps_points(report):
    view = report.student_view()
    hidden = view.tests[1]
    assert "returned -7" not in hidden.output and hidden.max_score == 3 and hidden.status == "failed"
    assert view.tests[0] == report.tests[0]
    assert "returned -7" in report.tests[1].output  # the instructor's copy is untouched


def test_text_names_function_status_and_message(report):
    text = render_text(report)
    assert "score: 2 / 5" in text
    assert "[FAIL]" in text and "maximize" in text and "returned -7" in text and "(hidden)" in text
    assert "cell 2 line 1" in text


def test_html_escapes_output(report):
    html = render_html(report)
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert 'data-check="t2"' in html


def test_gradescope_results_json(report):
    results = json.loads(render_gradescope(report))
    assert results["score"] == 2
    assert [t["status"] for t in results["tests"]] == ["passed", "failed"]
    assert results["tests"][1]["visibility"] == "after_published"
    assert results["tests"][1]["name"].startswith("maximize:")
