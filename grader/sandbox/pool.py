"""A pool of warm sandboxes: `grader batch`, `grader validate` and service workers draw from it.

A sandbox comes back after each submission; an unhealthy one (harness error, not clean, used
`GRADER_SANDBOX_REUSE` times) is closed and a fresh one is warmed in the background.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from grader.sandbox import Sandbox, open_sandbox

log = logging.getLogger(__name__)


class SandboxPool:
    def __init__(self, kind: str, size: int = 1):
        self.kind = kind
        self.size = size
        self._idle: queue.Queue[Sandbox | Exception] = queue.Queue()
        self._closed = threading.Event()
        with ThreadPoolExecutor(max_workers=size) as starter:
            boxes = list(starter.map(lambda _: open_sandbox(kind), range(size)))
        for box in boxes:
            self._idle.put(box)

    @contextmanager
    def sandbox(self) -> Iterator[Sandbox]:
        """Borrow a warm sandbox for one submission."""
        box = self._idle.get()
        if isinstance(box, Exception):
            self._idle.put(box)  # the pool cannot make sandboxes any more: every borrower hears why
            raise box
        try:
            yield box
        finally:
            self._give_back(box)

    def _give_back(self, box: Sandbox) -> None:
        if self._closed.is_set():
            box.close()
        elif box.healthy:
            self._idle.put(box)
        else:
            box.close()
            threading.Thread(target=self._replace, daemon=True).start()

    def _replace(self) -> None:
        try:
            fresh = open_sandbox(self.kind)
        except Exception as exc:
            log.error("could not replace a discarded %s sandbox: %s", self.kind, exc)
            self._idle.put(exc)
            return
        if self._closed.is_set():
            fresh.close()
        else:
            self._idle.put(fresh)

    def close(self) -> None:
        self._closed.set()
        while True:
            try:
                box = self._idle.get_nowait()
            except queue.Empty:
                return
            if not isinstance(box, Exception):
                box.close()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
