"""Whether intake could write the journal lately. A journal that still reads but refuses writes (a full
disk, a file turned read-only) looks healthy to a read; intake's own failures are the witness, so /readyz
answers 503 for a while after one and a load balancer sends commanders to an instance that can accept."""

from __future__ import annotations

from typing import Final

UNREADY_AFTER_FAILURE: Final = 30.0
"""Seconds /readyz answers 503 after intake failed to write the journal. After that the instance is tried
again: the next failed write makes it unready once more, a successful one keeps it ready."""


class JournalWrites:
    def __init__(self) -> None:
        self._failed_at = float("-inf")
        self._error = ""

    def failed(self, at: float, error: str) -> None:
        """Intake could not write the journal at `at` (error: scrubbed, for the operator)."""
        self._failed_at = at
        self._error = error

    def recent_failure(self, now: float) -> str | None:
        """The last write failure's error while it is recent, else None."""
        return self._error if 0 <= now - self._failed_at < UNREADY_AFTER_FAILURE else None
