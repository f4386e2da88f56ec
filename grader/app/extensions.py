"""The store and the queue, made once per app and reached from views through `store()` and `queue()`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from grader.queue import GradingQueue, make_huey
from grader.store import Store


@dataclass
class Backends:
    store: Store
    queue: GradingQueue


def make_backends(config: Mapping[str, Any]) -> Backends:
    """The store and queue that settings name: the app's, or a `grader worker` process's own."""
    store = Store(config["DATABASE_URL"])
    return Backends(store, GradingQueue(store, make_huey(config["DATA_DIR"], config["REDIS_URL"])))


def init_app(app: Flask) -> None:
    app.extensions["grader"] = make_backends(app.config)


def backends() -> Backends:
    return current_app.extensions["grader"]


def store() -> Store:
    return backends().store


def queue() -> GradingQueue:
    return backends().queue
