"""The outbox sender: a thread in every worker process that sends due LMS deliveries, one at a time.

The store is its only state (see `grader.lms_store`): it claims a delivery with a lease, makes one
signed attempt with `grader.lms`, and records the attempt with what follows it (delivered, retry
at a time chosen by backoff with jitter, or gave up). Nothing is kept in memory between attempts,
so a restart, or another worker process, carries on where this one stopped.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import requests

from grader.lms import (
    AttemptResult, Decision, LtiPlatform, RetryPolicy, TokenCache, ToolKeys, decide, deliver_callback, post_score,
)
from grader.lms_store import ClaimedDelivery, LmsStore
from grader.store import utcnow

log = logging.getLogger(__name__)

# A claim lasts this many request timeouts: an LTI attempt may fetch a token and post twice, plus slack.
LEASE_TIMEOUTS = 4


def retry_policy(config: Mapping[str, Any]) -> RetryPolicy:
    """The policy the settings ask for (GRADER_LMS_RETRY_*), RetryPolicy's defaults for the rest."""
    return RetryPolicy(**config["LMS_RETRY"])


class OutboxSender:
    def __init__(self, lms: LmsStore, data_dir: Path, policy: RetryPolicy, poll_seconds: float) -> None:
        self.lms = lms
        self.data_dir = data_dir
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=LEASE_TIMEOUTS * policy.timeout)
        self.tokens = TokenCache()
        self.http = requests.Session()  # used by the sender's thread only

    @cached_property
    def keys(self) -> ToolKeys:
        """The tool's LTI key, read (or made) on the first score passback."""
        return ToolKeys(self.data_dir)

    def run(self, stopping: threading.Event) -> None:
        """Send what is due every `poll_seconds` until `stopping` is set."""
        while not stopping.wait(self.poll_seconds):
            try:
                self.send_due(stopping)
            except Exception:
                log.exception("LMS outbox: could not send")

    def send_due(self, stopping: threading.Event | None = None) -> int:
        """Send every due delivery; returns how many were attempted."""
        sent = 0
        while not (stopping and stopping.is_set()) and (claimed := self.lms.claim_next(self.lease)):
            self.send(claimed)
            sent += 1
        return sent

    def send(self, claimed: ClaimedDelivery) -> Decision:
        started_at = utcnow()
        result = self._attempt(claimed)
        decision = decide(claimed.attempts, result, policy=self.policy)
        self.lms.record_attempt(claimed, started_at, result, decision)
        log.log(logging.INFO if result.ok else logging.WARNING, "LMS %s %s to %s, attempt %d: %s", claimed.kind,
                claimed.id, claimed.target_url, claimed.number,
                "delivered" if result.ok else f"{result.error}; {decision.state}")
        return decision

    def _attempt(self, claimed: ClaimedDelivery) -> AttemptResult:
        started = time.monotonic()
        try:
            body = json.loads(claimed.body)
            if claimed.kind == "callback":
                secret = self.lms.secrets.decrypt(claimed.secret_encrypted)
                return deliver_callback(claimed.target_url, body, secret, claimed.id, timeout=self.policy.timeout,
                                        session=self.http)
            return post_score(LtiPlatform.model_validate(claimed.lti), self.keys, claimed.target_url, body,
                              tokens=self.tokens, session=self.http, timeout=self.policy.timeout)
        except Exception as exc:  # a replaced key file, a registration no longer valid: retrying fixes neither
            log.exception("LMS %s %s: cannot be sent", claimed.kind, claimed.id)
            return AttemptResult(False, None, f"cannot be sent: {exc}", time.monotonic() - started)
