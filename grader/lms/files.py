"""Key files in the data directory: created once, mode 0600, the same for every process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def private_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The contents of `path`, created with `make()` and mode 0600 if missing.

    Several processes (service, workers, CLI) may start at once: each writes its candidate to a
    staging file and hard-links it into place, so exactly one wins and all read the same key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(make())
        try:
            os.link(staged, path)
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    return path.read_bytes()
