"""Sandboxes grade one submission at a time; launchers make them.

Every sandbox answers `grade(job) -> outcome`, where `job` is the submission's cells, seed,
assignment slug and limits, and `outcome` is {"results": {check id: {status, output}},
"notes": [...], "error": str | None, "clean": bool}. A sandbox that is not `healthy` after a
job (harness error, dirty after cleanup, too many uses) must be closed and replaced.
"""

from __future__ import annotations

import os
from typing import Protocol

SANDBOX_KINDS = ("docker", "local", "none")


class SandboxError(RuntimeError):
    """A sandbox could not be started (no engine, no image, warm-up failed)."""


class Sandbox(Protocol):
    kind: str

    def grade(self, job: dict) -> dict: ...

    @property
    def healthy(self) -> bool: ...

    def close(self) -> None: ...


def reuse_limit() -> int:
    return int(os.environ.get("GRADER_SANDBOX_REUSE", "200"))


def default_kind() -> str:
    """`GRADER_SANDBOX` if set; else docker when an engine answers and the image exists; else local."""
    kind = os.environ.get("GRADER_SANDBOX")
    if kind:
        return kind
    from grader.sandbox.docker import engine_available

    return "docker" if engine_available() else "local"


def open_sandbox(kind: str) -> Sandbox:
    if kind == "none":
        from grader.sandbox.inprocess import InProcessSandbox

        return InProcessSandbox()
    if kind == "local":
        from grader.sandbox.local import LocalSandbox

        return LocalSandbox()
    if kind == "docker":
        from grader.sandbox.docker import DockerSandbox

        return DockerSandbox()
    raise SandboxError(f"unknown sandbox {kind!r} (choose from {', '.join(SANDBOX_KINDS)})")
