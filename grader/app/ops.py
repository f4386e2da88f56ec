"""For whoever runs the service: /healthz (the process answers), /readyz (it can grade), /metrics.

The numbers come from the store at scrape time, not from counters in this process, so they
are right however many `grader worker` processes on however many machines do the grading.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from grader.app.extensions import Backends, backends
from grader.queue import HEARTBEAT_SECONDS

bp = Blueprint("ops", __name__)

DURATION_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
LIVE_WITHIN = timedelta(seconds=3 * HEARTBEAT_SECONDS)


class StoreCollector:
    """Prometheus metrics read from the store and the queue when scraped."""

    def __init__(self, found: Backends) -> None:
        self.store = found.store
        self.queue = found.queue
        self.lms = found.lms

    def collect(self):
        yield GaugeMetricFamily("grader_queue_depth", "Messages waiting in the work queue", value=self.queue.depth())
        jobs = GaugeMetricFamily("grader_jobs", "Jobs by status", labels=["status"])
        for status, count in self.store.job_counts().items():
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily("grader_workers", "Worker processes with a recent heartbeat",
                                value=self.store.live_workers(LIVE_WITHIN))
        deliveries = GaugeMetricFamily("grader_lms_deliveries", "LMS callbacks and scores by state", labels=["state"])
        for state, count in self.lms.delivery_counts().items():
            deliveries.add_metric([state], count)
        yield deliveries
        buckets, total, seconds = self.store.grade_durations(DURATION_BUCKETS)
        yield HistogramMetricFamily(
            "grader_grade_duration_seconds", "Wall time of finished grading jobs",
            buckets=[(f"{bound:g}", count) for bound, count in zip(DURATION_BUCKETS, buckets, strict=True)]
            + [("+Inf", total)],
            sum_value=seconds,
        )


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready when the database and the queue answer and at least one worker can grade."""
    found = backends()
    checks = {}
    for name, probe in (("database", found.store.ping),
                        ("queue", lambda: found.queue.depth() >= 0),
                        ("workers", lambda: found.store.live_workers(LIVE_WITHIN) > 0)):
        try:
            checks[name] = bool(probe())
        except Exception:
            checks[name] = False
    ready = all(checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(backends()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
