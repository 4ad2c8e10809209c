"""Jobs as a lane hands them to the channel, built without a journal (channel tests, the benchmark)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from broadcaster.domain.models import Incident, Update
from broadcaster.domain.vocabulary import Impact, Kind, Status
from channels.base import Job

INCIDENT_ID = "abcdefghjkmn"
PUBLIC_URL = "https://status.example.com"


class NoJournal:
    """The journal reader handed to the channel: the X channel never reads the journal."""

    async def site_history(self, *, recent: int | None) -> list[Any]:
        raise AssertionError("the X channel never reads the journal")

    async def suppressed(self) -> frozenset[str]:
        return frozenset()


@dataclass
class Saved:
    """What a job's save_progress calls stored: each call's entries in `saves`, all of them in `progress`."""

    saves: list[dict[str, str]] = field(default_factory=list)
    progress: dict[str, str] = field(default_factory=dict)

    async def save_progress(self, entries: Mapping[str, str]) -> None:
        self.saves.append(dict(entries))
        self.progress.update(entries)


def make_job(
    *,
    message: str = "We are looking into elevated API error rates.",
    status: Status = Status.INVESTIGATING,
    impact: Impact = Impact.MAJOR,
    title: str = "API errors",
    seq: int = 1,
    thread_parent: str | None = None,
    attempt: int = 1,
    saved: Saved | None = None,
    progress: Mapping[str, str] | None = None,
) -> Job:
    """A job for update `seq` of incident INCIDENT_ID, as a lane would hand it over."""
    now = datetime.now(UTC)
    saved = saved if saved is not None else Saved()
    incident = Incident(
        id=INCIDENT_ID,
        kind=Kind.INCIDENT,
        name=title,
        status=status,
        impact=impact,
        components={},
        created_at=now,
        updated_at=now,
        started_at=now,
        monitoring_at=None,
        resolved_at=now if status.is_final else None,
        scheduled_for=None,
        scheduled_until=None,
        next_update_at=None,
        update_count=seq,
    )
    update = Update(
        id=f"upd{seq:09d}",
        incident_id=INCIDENT_ID,
        seq=seq,
        status=status,
        impact=impact,
        message=message,
        components=(),
        created_at=now,
        next_update_at=None,
    )
    return Job(
        delivery_id=f"dlv{seq:09d}",
        channel="x",
        target="x",
        attempt=attempt,
        max_attempts=4,
        expires_at=time.time() + 3600,
        incident=incident,
        update=update,
        history=(update,),
        thread_parent=thread_parent,
        progress=dict(saved.progress if progress is None else progress),
        save_progress=saved.save_progress,
        stop_requested=lambda: False,
    )
