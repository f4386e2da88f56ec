"""The instructor's batch pages: upload a class's zip, watch its progress bar fill, download the results.

Signed in the way the other pages are (web.py's session and CSRF token); the downloads are the
API's, behind the session instead of a bearer token.
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from grader import assignments
from grader.app import auth
from grader.app.batches import (
    allow_batch_upload,
    batch_or_404,
    canvas_response,
    counts,
    create_batch,
    entry_result,
    entry_status,
    gradebook_response,
    is_finished,
    summary_response,
)
from grader.app.errors import message_of
from grader.app.extensions import store
from grader.app.submissions import assignment_or_404
from grader.app.web import instructor_required, load_user, page_globals
from grader.store import Batch

bp = Blueprint("batch_pages", __name__, url_prefix="/batches")
bp.before_request(load_user)
bp.context_processor(page_globals)


@bp.errorhandler(HTTPException)
def error_page(error: HTTPException):
    """These are pages, whatever the browser's Accept header: refusals are pages too (errors.py's look)."""
    return render_template("web/error.html", status=error.code, title=error.name, message=message_of(error)), \
        error.code


@bp.get("")
@instructor_required
def batches():
    return _batches_page()


@bp.post("")
@instructor_required
def upload():
    try:
        allow_batch_upload()
        auth.check_csrf()
        batch_id = create_batch(request.form.get("assignment", ""), request.files.get("file"),
                                request.form.get("id_pattern") or None, g.user)
    except HTTPException as exc:
        return _batches_page(error=message_of(exc)), exc.code
    return redirect(url_for("batch_pages.batch", batch_id=batch_id), 303)


@bp.get("/<batch_id>")
@instructor_required
def batch(batch_id: str):
    return render_template("web/batch.html", **_batch_parts(batch_or_404(batch_id)))


@bp.get("/<batch_id>/status")
@instructor_required
def batch_status(batch_id: str):
    """The changing part of the batch page, fetched by the page's script until the batch is finished."""
    parts = _batch_parts(batch_or_404(batch_id))
    return render_template("web/_batch.html", **parts), {"X-Batch-Status": "finished" if parts["finished"]
                                                         else "grading"}


@bp.get("/<batch_id>/gradebook.csv")
@instructor_required
def gradebook(batch_id: str):
    return gradebook_response(batch_id)


@bp.get("/<batch_id>/canvas.csv")
@instructor_required
def canvas(batch_id: str):
    return canvas_response(batch_id, request.args.get("canvas_id") or None)


@bp.get("/<batch_id>/summary")
@instructor_required
def summary(batch_id: str):
    return summary_response(batch_id)


def _batches_page(error: str | None = None) -> str:
    return render_template("web/batches.html", batches=[(b, counts(b)) for b in store().batches(limit=100)],
                           assignments=assignments.all_assignments().values(), error=error)


def _batch_parts(found: Batch) -> dict:
    spec = assignment_or_404(found.assignment)
    counted = counts(found)
    over = counted["done"] + counted["failed"] + counted["rejected"]
    return {
        "batch": found,
        "counts": counted,
        "over": over,
        "percent": round(100 * over / counted["total"]) if counted["total"] else 100,
        "finished": is_finished(found),
        "rows": [(entry, entry_status(entry), entry_result(entry, spec)) for entry in found.entries],
    }
