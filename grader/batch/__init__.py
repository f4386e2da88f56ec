"""Instructor batch grading: a class in one command, a gradebook and class statistics.

`core.grade_batch` is what callers share (CLI and service): entries and a sandbox pool in,
results out. `output` writes gradebooks and reports, `summary` the statistics, `command` the CLI.
"""

from grader.batch.collect import CollectError, Entry, collect
from grader.batch.core import BATCH_STATUSES, Result, grade_batch, grade_entry, source_hash

__all__ = ["BATCH_STATUSES", "CollectError", "Entry", "Result", "collect", "grade_batch", "grade_entry", "source_hash"]
