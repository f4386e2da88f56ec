"""The service's commands: `grader serve`, `grader worker`, `grader token create|revoke`, `grader lms`.

`grader/cli.py` owns the group and the shared `--sandbox` option and hands them to `register`.
"""

from __future__ import annotations

import logging
import os

import click

from grader.app.lms_commands import lms
from grader.auth import ROLES

workers_option = click.option(
    "--workers", type=click.IntRange(min=0), envvar="GRADER_WORKERS", default=None,
    help="Submissions graded at once, each in a warm sandbox of its own (GRADER_POOL_SIZE sandboxes in all).",
)


def _pool_size() -> int | None:
    value = os.environ.get("GRADER_POOL_SIZE")
    return int(value) if value else None


def _sandbox_kind(kind: str | None) -> str:
    from grader.sandbox import default_kind

    return kind or default_kind()


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@workers_option
@click.option("--debug", is_flag=True, help="Flask's development server with the debugger, for development only.")
def serve(host: str, port: int, sandbox: str | None, workers: int | None, debug: bool) -> None:
    """Run the grading service: JSON API, pages and workers in one process.

    With GRADER_REDIS_URL set the workers default to none here: run `grader worker` processes."""
    from grader.app import create_app
    from grader.app.server import serve as run_service
    from grader.sandbox import SandboxError

    _log_to_stderr()
    app = create_app()
    if workers is None:
        workers = 0 if app.config["REDIS_URL"] else 1
    try:
        run_service(app, host=host, port=port, workers=workers, sandbox=_sandbox_kind(sandbox) if workers else "",
                    pool_size=_pool_size(), debug=debug)
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@workers_option
def worker(sandbox: str | None, workers: int | None) -> None:
    """Grade queued submissions (with GRADER_REDIS_URL, on as many machines as you like)."""
    from grader.app import settings
    from grader.app.extensions import make_backends
    from grader.queue import GradingWorker
    from grader.sandbox import SandboxError

    _log_to_stderr()
    backends = make_backends(settings.from_env())
    try:
        GradingWorker(backends.queue, sandbox=_sandbox_kind(sandbox), threads=workers or 1,
                      pool_size=_pool_size(), outbox=backends.outbox).run()
    except SandboxError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def token() -> None:
    """API tokens for students and instructors."""


@token.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", required=True, help="Who the token is for, as reports and the instructor page show it.")
def create_token(role: str, name: str) -> None:
    """Create a token; its secret is printed once, alone on the last line."""
    from grader.app.auth import issue_token

    created, secret = issue_token(_store(), name, role)
    click.echo(f"created {role} token {created.id} for {name}; the secret is not shown again:")
    click.echo(secret)


@token.command("list")
def list_tokens() -> None:
    """List tokens (never their secrets)."""
    for found in _store().tokens():
        state = f"revoked {found.revoked_at:%Y-%m-%d}" if found.revoked_at else "active"
        click.echo(f"{found.id:>5}  {found.role:<10}  {state:<18}  {found.name}")


@token.command("revoke")
@click.argument("token_id", type=int)
def revoke_token(token_id: int) -> None:
    """Revoke the token TOKEN_ID (see `grader token list`): it stops working at once."""
    if not _store().revoke_token(token_id):
        raise click.ClickException(f"no active token {token_id}")
    click.echo(f"revoked token {token_id}")


def _store():
    from grader.app import settings
    from grader.store import Store

    return Store(settings.from_env()["DATABASE_URL"])


def register(main: click.Group, sandbox_option) -> None:
    """Add the service's commands to `main`, with the `--sandbox` option the other commands use."""
    main.add_command(sandbox_option(serve))
    main.add_command(sandbox_option(worker))
    main.add_command(token)
    main.add_command(lms)
