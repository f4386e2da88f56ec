"""The HTML pages: sign in with a token, upload per assignment, a submission page that fills in its
report when grading finishes, and the instructor's list of recent submissions."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Blueprint, g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from grader import assignments
from grader.app import auth
from grader.app.errors import abort, message_of
from grader.app.extensions import store
from grader.app.submissions import assignment_or_404, readable_or_404, report_for, submit
from grader.report import render_html
from grader.store import FINISHED, Submission

bp = Blueprint("web", __name__)


@bp.before_request
def load_user() -> None:
    g.user = auth.session_token()


@bp.context_processor
def page_globals() -> dict:
    return {"user": g.get("user"), "csrf_token": auth.csrf_token}


def login_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.user is None:
            return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)
    return wrapped


def instructor_required(view: Callable) -> Callable:
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if g.user.role != "instructor":
            abort(403, "forbidden", "this page is for instructors")
        return view(*args, **kwargs)
    return wrapped


@bp.get("/")
def index():
    return render_template("web/index.html", assignments=assignments.all_assignments().values())


@bp.route("/login", methods=["GET", "POST"])
def login():
    target = request.values.get("next", "")
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("web.index")
    if request.method == "POST":
        if auth.log_in(request.form.get("token", "")):
            return redirect(target, 303)
        return render_template("web/login.html", next=target, error="That token is not valid."), 401
    return render_template("web/login.html", next=target)


@bp.post("/logout")
def logout():
    auth.check_csrf()
    auth.log_out()
    return redirect(url_for("web.index"), 303)


@bp.get("/assignments/<slug>")
def assignment(slug: str):
    return render_template("web/assignment.html", spec=assignment_or_404(slug))


@bp.post("/assignments/<slug>")
@login_required
def upload(slug: str):
    auth.check_csrf()
    try:
        submission = submit(slug, request.files.get("file"), g.user, origin="web")
    except HTTPException as exc:
        if exc.code == 404:
            raise
        return render_template("web/assignment.html", spec=assignment_or_404(slug), error=message_of(exc)), exc.code
    return redirect(url_for("web.submission", submission_id=submission.id), 303)


@bp.get("/submissions/<submission_id>")
@login_required
def submission(submission_id: str):
    found = readable_or_404(submission_id, g.user)
    return render_template("web/submission.html", **_submission_parts(found))


@bp.get("/submissions/<submission_id>/status")
@login_required
def submission_status(submission_id: str):
    """The changing part of the submission page, fetched by the page's script until grading is over."""
    parts = _submission_parts(readable_or_404(submission_id, g.user))
    return render_template("web/_submission.html", **parts), {"X-Job-Status": parts["job"].status}


@bp.get("/instructor")
@instructor_required
def instructor():
    slug = request.args.get("assignment") or None
    recent = store().submissions(assignment=slug, limit=200)
    return render_template("web/instructor.html", submissions=recent, slug=slug,
                           assignments=assignments.all_assignments().values())


def _submission_parts(found: Submission) -> dict:
    report = report_for(g.user, found)
    return {
        "submission": found,
        "job": found.job,
        "finished": found.job.status in FINISHED,
        "report_html": Markup(render_html(report, full_page=False)) if report else None,
    }
