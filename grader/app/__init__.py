"""The grading service: `create_app(config)` builds the Flask app (JSON API, pages, health and metrics).

The app takes submissions and answers questions about them; grading happens in workers
(`grader.queue`), inside `grader serve` or in `grader worker` processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Settings come from the environment (GRADER_*), then from `config`.

    Imports happen here, so that `grader grade` and the other commands do not pay for Flask."""
    from flask import Flask

    from grader.app import api, errors, extensions, ops, settings, web

    app = Flask(__name__, template_folder="../templates")
    app.config.from_mapping(settings.from_env())
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.config.from_mapping(config or {})
    app.config["DATA_DIR"].mkdir(parents=True, exist_ok=True)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = settings.persistent_secret_key(app.config["DATA_DIR"])
    # Room for the multipart envelope around the largest submission; intake then says exactly what is wrong.
    if app.config["MAX_CONTENT_LENGTH"] is None:
        app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_SUBMISSION_BYTES"] + 64 * 1024

    extensions.init_app(app)
    errors.init_app(app)
    api.init_app(app)
    app.register_blueprint(web.bp)
    app.register_blueprint(ops.bp)
    return app
