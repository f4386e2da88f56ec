"""`--sandbox local`: the fork server as a host subprocess.

As root, each slot's student processes run as uid `GRADER_LOCAL_UID_BASE + slot` (no passwd
entry needed) in fresh mount and network namespaces, with the project (reference, checks),
the data directory and root's home hidden behind empty tmpfs mounts, private /tmp and
/dev/shm, and rlimits. Without root there is no uid to drop to: student code then runs with
your own privileges, which is only fit for trying your own checks.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tempfile
import warnings

from grader.assignments import PROJECT_ROOT, assignments_root, reference_root
from grader.harness import isolation
from grader.harness.protocol import Channel
from grader.sandbox.forkserver_client import ForkServerSandbox
from grader.sandbox.slots import Slot

def _python_paths() -> list[str]:
    paths = {sys.prefix, sys.base_prefix, *site.getsitepackages(), site.getusersitepackages()}
    return sorted(p for p in paths if p and os.path.isdir(p))


def _hidden_paths() -> list[str]:
    data_dir = os.environ.get("GRADER_DATA_DIR", "grader-data")
    paths = {str(PROJECT_ROOT), str(assignments_root()), str(reference_root()),
             os.path.abspath(data_dir), os.path.expanduser("~"), "/root", "/home"}
    return sorted(paths)


class LocalSandbox(ForkServerSandbox):
    kind = "local"

    def __init__(self) -> None:
        super().__init__()
        self.slot = Slot()
        root = os.geteuid() == 0
        if not root:
            warnings.warn("local sandbox without root: submissions run with your own privileges", stacklevel=2)
        config = {
            "assignments_dir": str(assignments_root()),
            "reference_dir": str(reference_root()),
            "student_uid": self.slot.uid("GRADER_LOCAL_UID_BASE", 64000) if root else None,
            "isolate": root,
            "hide": _hidden_paths(),
            "keep": _python_paths(),
            # As root the student gets a private /tmp (a tmpfs of its own namespace) to work in.
            "scratch_root": "/tmp" if root else None,
            "scratch_dirs": [] if root else None,
        }
        config = {k: v for k, v in config.items() if v is not None}
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.harness.forkserver", json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            start_new_session=True, cwd="/",
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "MPLBACKEND": "Agg"},
        )
        channel = Channel(os.dup(self.process.stdout.fileno()), os.dup(self.process.stdin.fileno()))
        self.process.stdout.close()
        self.process.stdin.close()
        self.student_uid = config.get("student_uid")
        self._handshake(channel)

    def diagnostics(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode(errors="replace")

    def alive(self) -> bool:
        return super().alive() and self.process.poll() is None

    def close(self) -> None:
        super().close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, 9)
        except ProcessLookupError:
            pass
        self.process.wait()
        if self.student_uid is not None:
            isolation.kill_uid(self.student_uid)  # whatever outlived a fork server killed mid-job
        self._stderr.close()
        self.slot.release()
