"""What the Redis journal answers about what it holds: incidents and their updates, the delivery ledger and
its attempts, the backlog, overdue incidents, idempotency keys and the lane controls (the scripts and
pipelines are in reading.py). RedisStore provides `link` and `_failures`."""

from __future__ import annotations

from datetime import datetime

from broadcaster.domain.models import Incident, IncidentHistory, Update
from broadcaster.domain.statuspage import IncidentSummary
from broadcaster.domain.uptime import ComponentUpdate
from broadcaster.store.base import Attempt, Delivery, KeyedRequest, LaneControl
from broadcaster.store.redis import reading
from broadcaster.store.redis.connection import Failures, Link


class JournalReads:
    """The reading part of RedisStore."""

    _failures: Failures

    @property
    def link(self) -> Link:
        raise NotImplementedError

    async def incident(self, incident_id: str) -> Incident:
        with self._failures.guard("read", write=False):
            return await reading.incident(self.link, incident_id)

    async def incidents(self, *, limit: int = 50, open_only: bool = False) -> list[Incident]:
        with self._failures.guard("read", write=False):
            return await reading.incidents(self.link, limit=limit, open_only=open_only)

    async def history(self, incident_id: str) -> IncidentHistory:
        with self._failures.guard("read", write=False):
            return await reading.history(self.link, incident_id)

    async def site_history(self, *, recent: int | None) -> list[IncidentHistory]:
        with self._failures.guard("read", write=False):
            return await reading.site_history(self.link, recent=recent)

    async def incident_summaries(self) -> list[IncidentSummary]:
        with self._failures.guard("read", write=False):
            return await reading.incident_summaries(self.link)

    async def component_updates(self, *, since: datetime) -> list[ComponentUpdate]:
        with self._failures.guard("read", write=False):
            return await reading.component_updates(self.link, since=since)

    async def update(self, update_id: str) -> Update:
        with self._failures.guard("read", write=False):
            return await reading.update(self.link, update_id)

    async def deliveries(
        self, *, update_id: str | None = None, incident_id: str | None = None, open_only: bool = False
    ) -> list[Delivery]:
        with self._failures.guard("read", write=False):
            return await reading.deliveries(
                self.link, update_id=update_id, incident_id=incident_id, open_only=open_only
            )

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        with self._failures.guard("read", write=False):
            return await reading.attempts(self.link, delivery_id)

    async def backlog(self) -> dict[str, tuple[int, float]]:
        with self._failures.guard("read", write=False):
            return await reading.backlog(self.link)

    async def overdue(self, *, now: datetime, limit: int) -> list[Incident]:
        with self._failures.guard("read", write=False):
            return await reading.overdue(self.link, now=now, limit=limit)

    async def keyed_requests(self) -> list[KeyedRequest]:
        with self._failures.guard("read", write=False):
            return await reading.keyed_requests(self.link)

    async def controls(self) -> list[LaneControl]:
        with self._failures.guard("read", write=False):
            return await reading.controls(self.link)
