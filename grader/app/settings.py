"""Settings from the environment (the contract in DESIGN.md); `create_app(config)` and flags override them."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grader.intake import DEFAULT_MAX_BYTES
from grader.store import default_database_url

# RetryPolicy fields of the LMS outbox, settable from the environment (so tests can retry in seconds).
LMS_RETRY_ENV = {"max_attempts": ("GRADER_LMS_RETRY_ATTEMPTS", int), "base": ("GRADER_LMS_RETRY_BASE", float),
                 "cap": ("GRADER_LMS_RETRY_CAP", float), "timeout": ("GRADER_LMS_TIMEOUT", float)}


def from_env(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    data_dir = Path(environ.get("GRADER_DATA_DIR") or "grader-data").resolve()
    return {
        "DATA_DIR": data_dir,
        "DATABASE_URL": environ.get("GRADER_DATABASE_URL") or default_database_url(data_dir),
        "REDIS_URL": environ.get("GRADER_REDIS_URL") or None,
        "SECRET_KEY": environ.get("GRADER_SECRET_KEY") or None,
        "MAX_SUBMISSION_BYTES": DEFAULT_MAX_BYTES,
        # The longest a client may hold a request open with ?wait=.
        "MAX_WAIT_SECONDS": 300,
        "LMS_RETRY": {field: kind(environ[name]) for field, (name, kind) in LMS_RETRY_ENV.items() if environ.get(name)},
        # How often a worker looks for LMS deliveries that are due.
        "LMS_POLL_SECONDS": float(environ.get("GRADER_LMS_POLL_SECONDS") or 1.0),
    }


def persistent_secret_key(data_dir: Path) -> str:
    """Sessions must survive a restart: without GRADER_SECRET_KEY the key is kept in the data directory."""
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        staged = data_dir / f".secret_key.{os.getpid()}"
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        try:
            os.link(staged, path)  # the first process to get here wins; the others read its key
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    return path.read_text().strip()
