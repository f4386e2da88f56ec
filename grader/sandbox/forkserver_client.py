"""The host's side of a fork server, whatever runs it (a local subprocess or a container)."""

from __future__ import annotations

from grader.harness.protocol import Channel, ChannelClosed, ChannelTimeout
from grader.sandbox import SandboxError, reuse_limit

WARM_UP_TIMEOUT = 120.0
# Time the host allows past the submission's own total limit before it gives up on the sandbox.
GRACE = 30.0


class ForkServerSandbox:
    """Grades jobs through a warm fork server reached over a frame channel."""

    kind = "forkserver"

    def __init__(self) -> None:
        self.channel: Channel | None = None
        self.uses = 0
        self.broken = False
        self.info: dict = {}

    def _handshake(self, channel: Channel) -> None:
        self.channel = channel
        try:
            ready = channel.recv_json(timeout=WARM_UP_TIMEOUT)
        except (ChannelClosed, ChannelTimeout) as exc:
            self.close()
            raise SandboxError(f"the {self.kind} sandbox did not warm up: {exc}; {self.diagnostics()}") from None
        if ready.get("event") != "ready":
            self.close()
            raise SandboxError(f"the {self.kind} sandbox said {ready!r} instead of ready")
        self.info = ready

    def diagnostics(self) -> str:
        """Whatever the fork server said on its way down (stderr or container logs)."""
        return ""

    def grade(self, job: dict) -> dict:
        self.uses += 1
        try:
            self.channel.send_json({"op": "grade", "job": job})
            outcome = self.channel.recv_json(timeout=job["limits"]["total_timeout"] + GRACE)
        except ChannelTimeout:
            self.broken = True
            return {"results": {}, "notes": [], "clean": False,
                    "error": f"the sandbox did not finish within the {job['limits']['total_timeout']:g} s limit"}
        except (ChannelClosed, OSError) as exc:
            self.broken = True
            return {"results": {}, "notes": [], "clean": False, "error": f"the sandbox failed: {exc}"}
        if outcome.get("error") or not outcome.get("clean", False):
            self.broken = True  # discarded: nothing of this submission may reach the next
        return outcome

    @property
    def healthy(self) -> bool:
        return not self.broken and self.uses < reuse_limit() and self.alive()

    def alive(self) -> bool:
        return self.channel is not None

    def close(self) -> None:
        if self.channel is not None:
            try:
                self.channel.send_json({"op": "exit"})
            except OSError:
                pass
            self.channel.close()
            self.channel = None
