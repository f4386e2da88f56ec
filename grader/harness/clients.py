"""What a check holds: `student` and `reference`, both answering `run(probe_name, **inputs)`.

The student client talks to a student process (or, with `--sandbox none`, calls the probe in
this process); the reference client runs the same probe on the reference module here. Both
return values that went through `torch.save`/`torch.load(weights_only=True)`, so a check
compares the same kinds of data either way.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
import time
import types
from typing import Any, Callable

from grader.harness.protocol import ChannelClosed, ChannelTimeout


def write_check_file(name: str, data: bytes) -> None:
    if os.path.basename(name) != name:
        raise ValueError(f"put_file takes a plain file name, not {name!r}")
    with open(name, "wb") as handle:
        handle.write(data)


class StudentError(Exception):
    """The submission's code raised, returned something unusable, or its process died."""


class StudentTimeout(Exception):
    """A probe call ran past its time limit."""


class TotalTimeout(Exception):
    """The whole submission ran past its time limit."""


class HarnessError(Exception):
    """The sandbox itself failed (not the submission): the check is reported as `error`."""


def roundtrip(value: Any) -> Any:
    """Pass a value through the data-only serialisation both clients share."""
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


class ReferenceClient:
    """Runs probes on the reference solution, in the grader process."""

    def __init__(self, module: types.ModuleType, probes: types.ModuleType, seeder: Callable[[], int]):
        self.module = module
        self.probes = probes
        self.seeder = seeder

    def run(self, probe: str, **inputs: Any) -> Any:
        from grader.harness.student import seed_everything, _plain

        seed_everything(self.seeder())
        return roundtrip(_plain(getattr(self.probes, probe)(self.module, **roundtrip(inputs))))


class StudentClient:
    """Talks to the student process; restarts it after a timeout or a crash.

    `spawn` returns a fresh channel to a new student process that has already run the
    submission (it sends its import notes first); `kill` ends the current one.
    """

    def __init__(self, spawn: Callable[[], Any], kill: Callable[[], None], probe_timeout: float,
                 import_timeout: float, deadline: float, seeder: Callable[[], int]):
        self._spawn = spawn
        self._kill = kill
        self.probe_timeout = probe_timeout
        self.import_timeout = import_timeout
        self.deadline = deadline
        self.seeder = seeder
        self.channel = None
        self.files: dict[str, bytes] = {}
        self.import_notes: list[dict] | None = None
        self.import_failure: str | None = None

    def _remaining(self, limit: float) -> tuple[float, bool]:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TotalTimeout("the submission's total time limit was reached")
        return min(limit, left), left < limit

    def _start(self) -> None:
        if self.import_failure:  # the same top-level code would fail the same way: don't wait again
            raise StudentError(self.import_failure)
        timeout, total_bound = self._remaining(self.import_timeout)
        self.channel = self._spawn()
        try:
            hello = self.channel.recv_data(timeout=timeout)
        except ChannelTimeout:
            self.restart()
            if total_bound:
                raise TotalTimeout("the submission's total time limit was reached while it was importing") from None
            self.import_failure = f"running the submission's top-level code took over {self.import_timeout:g} s"
            raise StudentTimeout(self.import_failure) from None
        except (ChannelClosed, Exception) as exc:
            self.restart()
            self.import_failure = f"the student process died while running the submission's top-level code ({exc})"
            raise StudentError(self.import_failure) from None
        if not isinstance(hello, dict):
            self.restart()
            raise StudentError("the student process sent something unexpected while importing")
        if "setup_error" in hello:
            self.restart()
            raise HarnessError(f"the sandbox could not start the student process:\n{hello['setup_error']}")
        if self.import_notes is None:
            self.import_notes = hello.get("notes", [])
        for name, data in self.files.items():
            self._call({"op": "put_file", "name": name, "data": _as_tensor(data)}, self.probe_timeout, "put_file")

    def restart(self) -> None:
        """Kill the student process; the next call starts a fresh one."""
        if self.channel is not None:
            self.channel.close()
        self.channel = None
        self._kill()

    def put_file(self, name: str, data: bytes) -> None:
        """Place a data file in the student's working directory (kept across restarts) and in the
        checks' own, where the reference reads it."""
        write_check_file(name, data)
        self.files[name] = data
        if self.channel is not None:
            self._call({"op": "put_file", "name": name, "data": _as_tensor(data)}, self.probe_timeout, "put_file")

    def run(self, probe: str, **inputs: Any) -> Any:
        if self.channel is None:
            self._start()
        reply = self._call({"op": "run", "probe": probe, "inputs": inputs, "seed": self.seeder()},
                           self.probe_timeout, probe)
        if not reply["ok"]:
            raise StudentError(f"calling {probe} raised {reply['error']}")
        return reply["value"]

    def _call(self, request: dict, limit: float, what: str) -> dict:
        timeout, total_bound = self._remaining(limit)
        try:
            self.channel.send_data(request)
            reply = self.channel.recv_data(timeout=timeout)
        except ChannelTimeout:
            self.restart()
            if total_bound:
                raise TotalTimeout("the submission's total time limit was reached") from None
            raise StudentTimeout(f"{what} did not return within {limit:g} s (time limit); the student process was restarted") from None
        except (ChannelClosed, OSError) as exc:
            self.restart()
            raise StudentError(f"the student process died while running {what} ({exc}); it was restarted") from None
        except Exception as exc:  # a weights-only load refused the reply
            self.restart()
            raise StudentError(f"{what} sent back something that is not plain data ({exc})") from None
        if not isinstance(reply, dict) or "ok" not in reply:
            raise StudentError(f"{what} sent back a malformed reply")
        return reply

    def close(self) -> None:
        self.restart()


def _as_tensor(data: bytes):
    import torch

    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


class InProcessStudent:
    """`--sandbox none`: the submission runs in this process; for writing and testing checks only.
    A probe timeout is an interval timer, so it holds only on the main thread."""

    def __init__(self, module: types.ModuleType, probes: types.ModuleType, seeder: Callable[[], int],
                 probe_timeout: float):
        self.module = module
        self.probes = probes
        self.seeder = seeder
        self.probe_timeout = probe_timeout
        self.import_notes: list[dict] = []
        self.import_failure = None

    def put_file(self, name: str, data: bytes) -> None:
        write_check_file(name, data)  # this process's working directory is the student's too

    def run(self, probe: str, **inputs: Any) -> Any:
        from grader.harness.student import _plain, describe_exception, seed_everything

        seed_everything(self.seeder())
        try:
            with _alarm(self.probe_timeout, probe):
                value = getattr(self.probes, probe)(self.module, **roundtrip(inputs))
            return roundtrip(_plain(value))
        except StudentTimeout:
            raise
        except Exception as exc:
            raise StudentError(f"calling {probe} raised {describe_exception(exc)[0]}") from None

    def close(self) -> None:
        pass


@contextlib.contextmanager
def _alarm(seconds: float, what: str):
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise StudentTimeout(f"{what} did not return within {seconds:g} s (time limit)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
