"""Slots: each live sandbox on this host holds one, and its student processes run under a uid
of their own (base + slot), so no two sandboxes share a uid that could signal across them or
share a per-uid process limit."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

SLOTS_DIR = Path(tempfile.gettempdir()) / "grader-slots"
MAX_SLOTS = 512


class Slot:
    """A slot number no other live sandbox on this host holds, kept by a lock file."""

    def __init__(self) -> None:
        SLOTS_DIR.mkdir(mode=0o755, exist_ok=True)
        for number in range(MAX_SLOTS):
            fd = os.open(SLOTS_DIR / f"{number}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.number, self._fd = number, fd
            return
        raise RuntimeError(f"all {MAX_SLOTS} sandbox slots on this host are in use")

    def uid(self, base_variable: str, default_base: int) -> int:
        return int(os.environ.get(base_variable, str(default_base))) + self.number

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
