"""Incidents whose promised next update is late ("next update by" passed with no newer update): /readyz
lists them, and `broadcaster serve` logs a warning once per incident and due time, checking right after
start-up and then every OVERDUE_CHECK_INTERVAL seconds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Final

from broadcaster.domain.errors import StoreError
from broadcaster.domain.models import Incident
from broadcaster.runtime import Runtime
from broadcaster.store import Store

log = logging.getLogger("broadcaster.overdue")

OVERDUE_CHECK_INTERVAL: Final = 15.0
"""Seconds between checks: a warning comes at most this long after an update fell due."""
OPEN_INCIDENTS_READ: Final = 1000
"""Overdue incidents read per check at most; a real outage has a handful, and a bound keeps a runaway
script's thousands from making each check (and each /readyz) answer with them all."""


async def overdue_incidents(store: Store, *, now: datetime) -> list[Incident]:
    """Open incidents whose next update is late, the longest overdue first."""
    return await store.overdue(now=now, limit=OPEN_INCIDENTS_READ)


class NotToldYet:
    """Which overdue incidents someone (the log, chat) has not been told of, once per incident and due time:
    the same lateness is not repeated every check, but an incident that gets a new "next update by" and misses
    that one too is news again. Only what is overdue now is remembered, so memory is bounded by it."""

    def __init__(self) -> None:
        self._told: set[tuple[str, datetime | None]] = set()

    def among(self, overdue: Sequence[Incident]) -> list[Incident]:
        """Those of `overdue` (every incident overdue now) not told of yet."""
        self._told &= {(incident.id, incident.next_update_at) for incident in overdue}
        return [incident for incident in overdue if (incident.id, incident.next_update_at) not in self._told]

    def told(self, incidents: Sequence[Incident]) -> None:
        self._told |= {(incident.id, incident.next_update_at) for incident in incidents}


class OverdueWarnings:
    """Warns in the log of each incident that became overdue (NotToldYet)."""

    def __init__(self) -> None:
        self._not_told = NotToldYet()

    def note(self, overdue: Sequence[Incident]) -> list[Incident]:
        """Log a warning for each incident newly overdue; returns them."""
        fresh = self._not_told.among(overdue)
        self._not_told.told(fresh)
        for incident in fresh:
            due = incident.next_update_at.isoformat(timespec="seconds") if incident.next_update_at else "?"
            log.warning(
                "incident %s (%s) is overdue: its next update was due at %s and none has been posted",
                incident.id,
                incident.name,
                due,
            )
        return fresh


async def watch_overdue(
    runtime: Runtime,
    *,
    interval: float = OVERDUE_CHECK_INTERVAL,
    remind: Callable[[list[Incident]], Awaitable[None]] | None = None,
) -> None:
    """Check now, then every `interval` seconds, until cancelled; `remind` is given every incident overdue
    at each check (chat's reminders keep their own account of what they told). A journal that cannot be read
    is logged and checked again next time: the warning is a reminder, never a reason to stop the service."""
    warnings = OverdueWarnings()
    while True:
        try:
            now = datetime.fromtimestamp(runtime.clock(), UTC)
            overdue = await overdue_incidents(runtime.store, now=now)
            warnings.note(overdue)
            if remind is not None:
                await remind(overdue)
        except StoreError as exc:
            log.error("checking for overdue incidents failed: %s", exc)
        except Exception:  # a bug: logged, and the reminders go on at the next check
            log.exception("checking for overdue incidents failed")
        await asyncio.sleep(interval)
