"""Failures that a retry cannot fix, so Airflow fails them at once instead of retrying.

A critical validation breach, a row-accounting mismatch, a missing landing, a
model refused by its gate or an invalid setting fails the same way on every
try: retrying only delays the page to on-call. Transient failures (the store
down, Spark lost) keep Airflow's retries with backoff. Exceptions mix in
``PermanentError``; Spark jobs report one by exiting with ``PERMANENT_EXIT_CODE``.
"""

from __future__ import annotations

PERMANENT_EXIT_CODE = 3
# The XCom that keeps a skipped task's reason, for the run summary.
SKIP_REASON_KEY = "skip_reason"


class PermanentError(Exception):
    """Retrying cannot help: bad data, a failed gate, a broken contract."""


class Skipped(Exception):
    """The task has nothing to do, for the stated reason (an optional feed the shop does not have)."""
