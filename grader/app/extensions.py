"""The store, the queue and the LMS outbox, made once per app and reached from views through `store()`, `queue()`
and `lms()`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from grader.lms import SecretBox
from grader.lms_sender import OutboxSender, retry_policy
from grader.lms_store import LmsStore
from grader.queue import GradingQueue, make_huey
from grader.store import Store


@dataclass
class Backends:
    store: Store
    queue: GradingQueue
    lms: LmsStore
    outbox: OutboxSender


def make_backends(config: Mapping[str, Any]) -> Backends:
    """The store, queue and outbox that settings name: the app's, or a `grader worker` process's own."""
    store = Store(config["DATABASE_URL"])
    lms = LmsStore(store, SecretBox(config["DATA_DIR"]))
    return Backends(store, GradingQueue(store, make_huey(config["DATA_DIR"], config["REDIS_URL"])), lms,
                    OutboxSender(lms, config["DATA_DIR"], retry_policy(config), config["LMS_POLL_SECONDS"]))


def init_app(app: Flask) -> None:
    app.extensions["grader"] = make_backends(app.config)


def backends() -> Backends:
    return current_app.extensions["grader"]


def store() -> Store:
    return backends().store


def queue() -> GradingQueue:
    return backends().queue


def lms() -> LmsStore:
    return backends().lms
