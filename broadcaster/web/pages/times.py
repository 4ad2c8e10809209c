"""Times as the commander's pages show them: in UTC, to the second, the same on every page."""

from __future__ import annotations

from datetime import UTC, datetime


def when(moment: datetime | float | None) -> str:
    """A datetime or epoch seconds as "2026-12-04 10:31:07 UTC" ("" for none)."""
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
