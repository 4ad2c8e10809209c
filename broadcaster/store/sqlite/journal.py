"""The embedded journal: one SQLite file in WAL mode, safe for several processes at once (its connections
in connection.py). The SQL lives in accepting.py, queue.py and reading.py, as plain functions on a
connection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from functools import partial
from pathlib import Path

from broadcaster.domain.errors import LeaseLost
from broadcaster.domain.models import Incident, IncidentHistory, Update, UpdateDraft
from broadcaster.domain.statuspage import IncidentSummary
from broadcaster.domain.subscriptions import Subscriber, SubscriberKind
from broadcaster.domain.uptime import ComponentUpdate
from broadcaster.domain.vocabulary import Ordering
from broadcaster.store.base import (
    Accepted,
    Attempt,
    BatchedClaims,
    ClaimResult,
    Delivery,
    Handoff,
    HandsOff,
    KeyedRequest,
    LaneControl,
    Outcome,
    PlannedDelivery,
    Store,
)
from broadcaster.store.sqlite import accepting, manifests, notices, queue, reading, snapshot
from broadcaster.store.sqlite import subscribers as subscriber_rows
from broadcaster.store.sqlite.connection import Connections
from broadcaster.store.sqlite.grouping import GroupCommit
from broadcaster.store.sqlite.sessions import SessionRecords

KNOWN_UPDATES = 32
"""Recent updates whose incident and history claims keep decoded."""


class SqliteStore(SessionRecords, Connections, BatchedClaims, HandsOff, Store):
    def __init__(self, path: Path, *, url: str, busy_timeout: float = 10.0) -> None:
        super().__init__(path, busy_timeout=busy_timeout)
        self.url = url
        self._progress: GroupCommit[queue.ProgressSave, bool] = GroupCommit(
            lambda saves: self._lane_write(partial(queue.save_progress, saves=saves))
        )
        self._with_progress: set[str] = set()
        """Deliveries leased here that hold saved progress: when one of them ends, its progress is pruned in
        the same transaction (any other is pruned by the next sweep, in expire_due or a lane's claim)."""
        self._notices = notices.notice_directory(path)
        self._announced: set[str] = set()
        """Lease owners of this process announced to followers (once each)."""
        self._known_updates: dict[str, queue.UpdateView] = {}
        """What claims read of recent updates (immutable once written), oldest first. A claim that falls
        back to the thread may fill it while the loop runs another: the worst a race costs is a read."""

    def follow(
        self,
        *,
        on_work: Callable[[], None],
        on_controls: Callable[[], None],
        on_holder_gone: Callable[[], None],
    ) -> AbstractAsyncContextManager[None]:
        """Through notices.py: other processes of this host announce their work and their leases."""

        @contextlib.asynccontextmanager
        async def following() -> AsyncIterator[None]:
            holders = await self._read(reading.lease_holders)
            async with notices.follow(
                self._notices,
                holders=holders,
                on_work=on_work,
                on_controls=on_controls,
                on_holder_gone=on_holder_gone,
            ):
                yield

        return following()

    def _announce_holder(self, owner: str) -> None:
        """Once per owner: a follower then watches this process, and takes its leases back when it ends."""
        if owner not in self._announced:
            self._announced.add(owner)
            notices.announce(self._notices, notices.HOLDER + owner.encode())

    # --- writing updates

    async def accept_handing_off(
        self,
        draft: UpdateDraft,
        plan: Sequence[PlannedDelivery],
        handoff: Handoff | None,
        *,
        now: datetime,
        idempotency_key: str | None = None,
        request_digest: str | None = None,
        same_within: float | None = None,
    ) -> Accepted:
        accepted = await self._write(
            partial(
                accepting.accept,
                draft=draft,
                plan=plan,
                now=now,
                idempotency_key=idempotency_key,
                request_digest=request_digest,
                handoff=handoff,
                same_within=same_within,
            ),
            durable=True,
        )
        if not accepted.duplicate:
            notices.announce(self._notices, notices.WORK)
        if accepted.handed_off and handoff is not None:
            self._announce_holder(handoff.owner)
            # Later claims of this update's other deliveries need not read it again.
            first = accepted.handed_off[0]
            self._known_updates[accepted.update.id] = (first.incident, first.history)
        return accepted

    # --- the delivery queue

    async def finish_and_claim(
        self,
        outcomes: Sequence[Outcome],
        channel: str,
        *,
        ordering: Ordering,
        owner: str,
        limit: int,
        now: float,
        lease: float,
        skip_targets: Collection[str] = (),
        sweep: bool = True,
        updates: Collection[str] | None = None,
    ) -> ClaimResult:
        known = self._known_updates
        claim = partial(
            queue.claim,
            channel=channel,
            ordering=ordering,
            owner=owner,
            limit=limit,
            now=now,
            lease=lease,
            skip_targets=skip_targets,
            sweep=sweep,
            record=outcomes,
            prune=bool(ending := self._ending_with_progress(outcomes)),
            updates_only=updates,
            known=known,
        )
        result = await self._lane_write(claim)
        if result.claimed:
            self._announce_holder(owner)
        self._with_progress -= ending
        self._with_progress.update(c.delivery.id for c in result.claimed if c.progress)
        for update_id in list(known)[: max(0, len(known) - KNOWN_UPDATES)]:
            del known[update_id]
        return result

    async def finish(self, owner: str, outcomes: Sequence[Outcome]) -> int:
        ending = self._ending_with_progress(outcomes)
        recorded = await self._lane_write(
            partial(queue.finish, owner=owner, outcomes=outcomes, now=time.time(), prune=bool(ending))
        )
        self._with_progress -= ending
        return recorded

    def _ending_with_progress(self, outcomes: Sequence[Outcome]) -> set[str]:
        """The deliveries among `outcomes` that end and saved progress here: their outcome's transaction
        prunes it (once written, they are forgotten here)."""
        if not self._with_progress:
            return set()
        return {o.delivery_id for o in outcomes if o.state.is_final} & self._with_progress

    async def release(self, owner: str, delivery_ids: Collection[str] | None, *, interrupted: str = "") -> int:
        release = partial(
            queue.release, owner=owner, delivery_ids=delivery_ids, now=time.time(), interrupted=interrupted
        )
        released = await self._lane_write(release)
        if released:
            notices.announce(self._notices, notices.WORK)
        if delivery_ids is None:
            self._with_progress.clear()
        else:
            self._with_progress.difference_update(delivery_ids)
        return released

    async def renew(self, owner: str, delivery_ids: Collection[str], *, until: float) -> None:
        await self._lane_write(partial(queue.renew, owner=owner, delivery_ids=delivery_ids, until=until))

    async def save_progress(self, owner: str, delivery_id: str, entries: Mapping[str, str]) -> None:
        """Saved in a group commit with every other save made in the same turn of the event loop (an email
        fan-out's connections each wait for their recipient to be saved before the next transaction)."""
        self._with_progress.add(delivery_id)
        if not await self._progress.save((owner, delivery_id, entries)):
            raise LeaseLost(f"delivery {delivery_id} is no longer leased to this process; its progress was not saved")

    async def recover(self, *, now: float, owner_is_dead: Callable[[str], bool]) -> list[Delivery]:
        return await self._write(partial(queue.recover, now=now, owner_is_dead=owner_is_dead))

    async def expire_due(self, *, now: float) -> list[Delivery]:
        return await self._write(partial(queue.expire, now=now, channel=None))

    async def requeue_failed(
        self, *, now: float, update_id: str | None = None, channel: str | None = None
    ) -> tuple[int, int]:
        requeued = await self._write(partial(queue.requeue_failed, now=now, update_id=update_id, channel=channel))
        if requeued[0]:
            notices.announce(self._notices, notices.WORK)
        return requeued

    # --- reading

    async def incident(self, incident_id: str) -> Incident:
        return await self._read(partial(reading.incident, incident_id=incident_id))

    async def incidents(self, *, limit: int = 50, open_only: bool = False) -> list[Incident]:
        return await self._read(partial(reading.incidents, limit=limit, open_only=open_only))

    async def history(self, incident_id: str) -> IncidentHistory:
        return await self._read(partial(reading.history, incident_id=incident_id))

    async def site_history(self, *, recent: int | None) -> list[IncidentHistory]:
        return await self._read(partial(reading.site_history, recent=recent))

    async def incident_summaries(self) -> list[IncidentSummary]:
        return await self._read(reading.incident_summaries)

    async def component_updates(self, *, since: datetime) -> list[ComponentUpdate]:
        return await self._read(partial(reading.component_updates, since=since.timestamp()))

    async def update(self, update_id: str) -> Update:
        return await self._read(partial(reading.update, update_id=update_id))

    async def deliveries(
        self, *, update_id: str | None = None, incident_id: str | None = None, open_only: bool = False
    ) -> list[Delivery]:
        reader = partial(reading.deliveries, update_id=update_id, incident_id=incident_id, open_only=open_only)
        return await self._read(reader)

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        return await self._read(partial(reading.attempts, delivery_id=delivery_id))

    async def backlog(self) -> dict[str, tuple[int, float]]:
        return await self._read(reading.backlog)

    async def overdue(self, *, now: datetime, limit: int) -> list[Incident]:
        return await self._read(partial(reading.overdue, now=now.timestamp(), limit=limit))

    async def keyed_requests(self) -> list[KeyedRequest]:
        return await self._read(reading.keyed_requests)

    # --- suppressions

    async def suppress(self, entries: Mapping[str, str], *, source: str, now: float) -> int:
        # Durable: an acknowledged unsubscribe must hold through a crash.
        return await self._write(partial(queue.suppress, entries=entries, source=source, now=now), durable=True)

    async def suppressed(self) -> frozenset[str]:
        return await self._read(reading.suppressed)

    async def is_suppressed(self, address: str) -> bool:
        return await self._read(partial(subscriber_rows.is_suppressed, address=address))

    async def unsuppress(self, address: str) -> bool:
        return await self._write(partial(subscriber_rows.unsuppress, address=address), durable=True)

    # --- subscribers

    async def save_subscribers(self, subscribers: Sequence[Subscriber]) -> int:
        return await self._write(partial(subscriber_rows.save, subscribers=subscribers), durable=True)

    async def remove_subscriber(self, kind: SubscriberKind, address: str) -> bool:
        return await self._write(partial(subscriber_rows.remove, kind=kind, address=address), durable=True)

    async def subscriber(self, kind: SubscriberKind, address: str) -> Subscriber | None:
        return await self._read(partial(subscriber_rows.one, kind=kind, address=address))

    async def subscribers(self, kind: SubscriberKind) -> list[Subscriber]:
        return await self._read(partial(subscriber_rows.every, kind=kind))

    # --- publish manifests

    async def publish_manifest(self, target: str) -> Mapping[str, str] | None:
        return await self._read(partial(manifests.publish_manifest, target=target))

    async def save_publish_manifest(self, target: str, manifest: Mapping[str, str]) -> None:
        save = partial(manifests.save_publish_manifest, target=target, manifest=manifest, now=time.time())
        await self._write(save, durable=True)

    # --- lane controls

    async def set_paused(self, channel: str, target: str, *, paused: bool, reason: str, now: float) -> None:
        change = partial(queue.set_paused, channel=channel, target=target, paused=paused, reason=reason, now=now)
        await self._write(change, durable=True)
        notices.announce(self._notices, notices.CONTROLS)

    async def controls(self) -> list[LaneControl]:
        return await self._read(reading.controls)

    # --- copies

    async def snapshot_to(self, path: Path) -> None:
        """On a connection of its own, in a thread: the journal's own connections go on meanwhile."""
        await asyncio.to_thread(snapshot.copy_journal, self.path, path)
