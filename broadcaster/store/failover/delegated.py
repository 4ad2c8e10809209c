"""The failover store's reads and side records: each goes to the shared journal while it answers and to the
replica while it does not (`either`, with a record held for the shared journal where one is written), or
only to the shared journal (`shared_only`) where the replica cannot stand in for it."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from broadcaster.domain.models import Incident, IncidentHistory, Update
from broadcaster.domain.statuspage import IncidentSummary
from broadcaster.domain.subscriptions import Subscriber, SubscriberKind
from broadcaster.domain.uptime import ComponentUpdate
from broadcaster.store.base import Attempt, Delivery, KeyedRequest, LaneControl, Store
from broadcaster.store.failover import held

T = TypeVar("T")


class Delegated(Store):
    @abstractmethod
    async def either(self, call: Callable[[Store], Awaitable[T]], *, hold: dict[str, Any] | None = None) -> T: ...

    @abstractmethod
    async def shared_only(self, call: Callable[[Store], Awaitable[T]], what: str) -> T: ...

    # --- reading (from the replica while degraded)

    async def incident(self, incident_id: str) -> Incident:
        return await self.either(lambda s: s.incident(incident_id))

    async def incidents(self, *, limit: int = 50, open_only: bool = False) -> list[Incident]:
        return await self.either(lambda s: s.incidents(limit=limit, open_only=open_only))

    async def history(self, incident_id: str) -> IncidentHistory:
        return await self.either(lambda s: s.history(incident_id))

    async def site_history(self, *, recent: int | None) -> list[IncidentHistory]:
        return await self.either(lambda s: s.site_history(recent=recent))

    async def incident_summaries(self) -> list[IncidentSummary]:
        return await self.either(lambda s: s.incident_summaries())

    async def component_updates(self, *, since: datetime) -> list[ComponentUpdate]:
        return await self.either(lambda s: s.component_updates(since=since))

    async def update(self, update_id: str) -> Update:
        return await self.either(lambda s: s.update(update_id))

    async def deliveries(
        self, *, update_id: str | None = None, incident_id: str | None = None, open_only: bool = False
    ) -> list[Delivery]:
        return await self.either(
            lambda s: s.deliveries(update_id=update_id, incident_id=incident_id, open_only=open_only)
        )

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        return await self.either(lambda s: s.attempts(delivery_id))

    async def backlog(self) -> dict[str, tuple[int, float]]:
        return await self.either(lambda s: s.backlog())

    async def overdue(self, *, now: datetime, limit: int) -> list[Incident]:
        return await self.either(lambda s: s.overdue(now=now, limit=limit))

    async def keyed_requests(self) -> list[KeyedRequest]:
        return await self.either(lambda s: s.keyed_requests())

    # --- suppressions, subscribers, manifests, controls, copies

    async def suppress(self, entries: Mapping[str, str], *, source: str, now: float) -> int:
        record = held.suppress(entries, source=source, now=now)
        return await self.either(lambda s: s.suppress(entries, source=source, now=now), hold=record)

    async def suppressed(self) -> frozenset[str]:
        return await self.either(lambda s: s.suppressed())

    async def is_suppressed(self, address: str) -> bool:
        return await self.either(lambda s: s.is_suppressed(address))

    async def unsuppress(self, address: str) -> bool:
        return await self.shared_only(lambda s: s.unsuppress(address), "lifting a suppression")

    async def save_subscribers(self, subscribers: Sequence[Subscriber]) -> int:
        return await self.shared_only(lambda s: s.save_subscribers(subscribers), "a new subscription")

    async def remove_subscriber(self, kind: SubscriberKind, address: str) -> bool:
        return await self.shared_only(lambda s: s.remove_subscriber(kind, address), "removing a subscriber")

    async def subscriber(self, kind: SubscriberKind, address: str) -> Subscriber | None:
        return await self.either(lambda s: s.subscriber(kind, address))

    async def subscribers(self, kind: SubscriberKind) -> list[Subscriber]:
        return await self.either(lambda s: s.subscribers(kind))

    async def publish_manifest(self, target: str) -> Mapping[str, str] | None:
        return await self.either(lambda s: s.publish_manifest(target))

    async def save_publish_manifest(self, target: str, manifest: Mapping[str, str]) -> None:
        record = held.manifest(target, manifest)
        await self.either(lambda s: s.save_publish_manifest(target, manifest), hold=record)

    async def set_paused(self, channel: str, target: str, *, paused: bool, reason: str, now: float) -> None:
        record = held.pause(channel, target, paused=paused, reason=reason, now=now)
        await self.either(lambda s: s.set_paused(channel, target, paused=paused, reason=reason, now=now), hold=record)

    async def controls(self) -> list[LaneControl]:
        return await self.either(lambda s: s.controls())

    async def snapshot_to(self, path: Path) -> None:
        await self.either(lambda s: s.snapshot_to(path))

    # --- web sessions

    async def revoke_session(self, session_id: str, *, until: float) -> None:
        record = held.revoke(session_id, until=until)
        await self.either(lambda s: s.revoke_session(session_id, until=until), hold=record)

    async def session_revoked(self, session_id: str, *, now: float) -> bool:
        # The replica keeps no logouts: unreadable, and the gate lets the session's signature decide.
        return await self.shared_only(lambda s: s.session_revoked(session_id, now=now), "checking a logout")

    async def redeem_once(self, purpose: str, nonce: str, *, now: float, until: float) -> bool:
        # Whether a link was used before is the shared journal's to say: a login link waits for it.
        return await self.shared_only(
            lambda s: s.redeem_once(purpose, nonce, now=now, until=until), "signing in with a login link"
        )
