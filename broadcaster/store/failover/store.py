"""A shared journal (Redis) with a local replica to go on from when it cannot be reached.

While the shared journal answers, everything goes to it, and the replica (a SQLite journal in the data
directory) is kept a copy of what sending needs: incidents and their updates, the ended deliveries of open
incidents (X thread ids), pauses, suppressions, subscribers, publish manifests, idempotency keys
(replica.py, refreshed by watch.py). The first call that finds it out of reach turns the store degraded:
updates are accepted into the replica and delivered from it; outcomes of deliveries leased from the shared
journal before it went, and pauses, suppressions and manifests written meanwhile, are held in the replica.
Once it answers again, watch.py takes everything back (way_back.py) and the store is shared again.

What is never done from the replica: work that was queued in the shared journal when it went (other
instances may still be reaching it, and would send it too: it waits for the journal to come back), and
what only makes sense shared (confirming a subscriber, lifting a suppression): those are refused while
degraded, with a message saying why."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Final, TypeVar

from broadcaster.domain.errors import NotFoundError, StoreUnreachable
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import Ordering
from broadcaster.store.base import (
    Accepted,
    BatchedClaims,
    ClaimResult,
    Delivery,
    Handoff,
    HandsOff,
    Outcome,
    PlannedDelivery,
    Standing,
    Store,
    accept_update,
    finish_and_claim,
)
from broadcaster.store.failover import held
from broadcaster.store.failover.delegated import Delegated
from broadcaster.store.failover.replica import Replica, claim_replica

T = TypeVar("T")
log = logging.getLogger("broadcaster.failover")


class Mode(enum.Enum):
    SHARED = "shared"
    DEGRADED = "degraded"
    RETURNING = "returning"
    """The shared journal answers again; what the replica holds is going back to it. Updates are still
    accepted into the replica (so they go back in order, after the ones before them); nothing new is
    claimed."""


RETURN_GRACE: Final = 10.0
"""Seconds after coming back before this instance takes back leases that ran out in the shared journal. When
Redis itself was down every instance comes back within a probe or two, and each first writes the outcomes of
what it sent meanwhile under those leases: taken back sooner, those deliveries would be sent again."""


@contextlib.contextmanager
def _said_of_the_replica(incident_id: str | None) -> Iterator[None]:
    """An incident the replica lacks may be one another instance opened during the outage: say so."""
    try:
        yield
    except NotFoundError as exc:
        if incident_id is None:
            raise
        raise NotFoundError(
            f"{exc}: this instance runs on its replica (what it copied from the shared journal before that went "
            "out of reach, and what it accepted since), and the incident may have been opened on another instance "
            "meanwhile, or be newer than the copy (post to another instance, or open a new incident)",
            exc.fields,
        ) from None


class NotShared(Exception):
    """FailoverStore.shared: the call was not made on the shared journal (the store runs on its replica)."""


class FailoverStore(BatchedClaims, HandsOff, Delegated):
    shared_by_instances: ClassVar[bool] = True

    def __init__(
        self,
        primary: Store,
        data_dir: Path,
        *,
        orderings: Mapping[str, Ordering],
        publish_targets: Collection[str],
        refresh_every: float,
        probe_every: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = primary.url
        self.primary = primary
        self.data_dir = data_dir
        self.local = Replica(data_dir / "replica.db", url="")  # the replica this instance claims at open
        self._lock: int | None = None
        self.orderings = dict(orderings)
        self.publish_targets = tuple(publish_targets)
        self.refresh_every = refresh_every
        self.probe_every = probe_every
        self.clock = clock
        self.mode = Mode.SHARED
        self.since: float | None = None
        self.reason = ""
        self.held_count = 0
        self.accepted_count = 0
        """Updates accepted into the replica while degraded, not given back yet (Standing.accepted)."""
        self.returns = 0
        """Times the store came back to the shared journal (Standing.returns)."""
        self.back_at: float | None = None
        """When (time.monotonic) the store last came back to the shared journal."""
        self.local_leasing = 0
        self.local_ids: set[str] = set()
        """Deliveries leased from the replica: their outcomes are recorded there, whatever the mode."""
        self.local_writes = asyncio.Lock()
        """Held while accepting into the replica or holding a record, and while deciding the way back is
        complete: nothing lands in the replica after its last look."""
        self.changed = asyncio.Event()
        """The shared journal changed: the replica wants a refresh."""

    # --- the mode

    async def open(self) -> None:
        path, self._lock = await asyncio.to_thread(claim_replica, self.data_dir)
        self.local = Replica(path, url=f"sqlite:///{path}")
        await self.local.open()
        left = await self.local.marked()
        self.held_count, self.accepted_count = left.waiting, left.accepted
        try:
            await self.primary.open()
        except StoreUnreachable as exc:
            await self.went_down(exc, since=left.since)
            return
        if left.degraded:  # a run before this one went degraded and did not finish taking its work back
            self.mode, self.since, self.reason = Mode.RETURNING, left.since, left.reason
        else:
            self.changed.set()

    async def close(self) -> None:
        await self.primary.close()
        await self.local.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    async def went_down(self, exc: StoreUnreachable, *, since: float | None = None) -> None:
        """The shared journal is out of reach: from now on the replica takes the work. The mark is durable
        before the mode changes (under the lock every local write takes), so a refresh never replaces a
        replica that holds work of its own, and a restart finds the work to take back."""
        async with self.local_writes:
            if self.mode is Mode.RETURNING:
                self.mode = Mode.DEGRADED
            if self.mode is not Mode.SHARED:
                return
            since = since if since is not None else self.clock()
            await self.local.mark_degraded(since=since, reason=str(exc))
            self.mode, self.since, self.reason = Mode.DEGRADED, since, str(exc)
        log.warning("running degraded on the local replica %s: %s", self.local.path, exc)

    @contextlib.contextmanager
    def leasing(self) -> Iterator[None]:
        """Around a call that may lease from the replica: the way back waits until none is running."""
        self.local_leasing += 1
        try:
            yield
        finally:
            self.local_leasing -= 1

    def standing(self) -> Standing:
        if self.mode is Mode.SHARED:
            return Standing(returns=self.returns)
        return Standing(
            degraded=True,
            since=self.since,
            reason=self.reason,
            waiting=self.held_count,
            accepted=self.accepted_count,
            returns=self.returns,
        )

    async def hold(self, record: dict[str, Any]) -> None:
        """Keep `record` for the shared journal; written to it at once if the way back ended meanwhile (the
        lock keeps a record from slipping in after the way back's last look)."""
        async with self.local_writes:
            if self.mode is not Mode.SHARED:
                await self.local.hold(record)
                self.held_count += 1
                return
        try:
            await held.write(self.primary, record)
        except StoreUnreachable as exc:
            await self.went_down(exc)
            await self.hold(record)

    async def reachable(self) -> None:
        await self.primary.reachable()

    async def lost_its_data(self) -> bool:
        return await self.primary.lost_its_data()

    async def shared(self, call: Callable[[Store], Awaitable[T]], *, returning_too: bool = False) -> T:
        """`call` on the shared journal, while the store is shared (`returning_too`: or taking its work back,
        for what Redis itself leased, which must be renewed and ended there so its leases never run out).
        Raises NotShared when it is not, or when the call finds it out of reach (the store is degraded then)."""
        if self.mode is Mode.SHARED or (returning_too and self.mode is Mode.RETURNING):
            try:
                return await call(self.primary)
            except StoreUnreachable as exc:
                await self.went_down(exc)
        raise NotShared

    async def either(self, call: Callable[[Store], Awaitable[T]], *, hold: dict[str, Any] | None = None) -> T:
        """`call` on the shared journal while it answers, else on the replica (holding `hold`, a record of
        the call, to write it to the shared journal later)."""
        with contextlib.suppress(NotShared):
            return await self.shared(call)
        if hold is not None:
            await self.hold(hold)
        return await call(self.local)

    async def shared_only(self, call: Callable[[Store], Awaitable[T]], what: str) -> T:
        with contextlib.suppress(NotShared):
            return await self.shared(call)
        raise StoreUnreachable(
            f"{what} waits for the shared journal ({self.reason or 'out of reach'}); updates are still "
            "accepted and sent from this instance's replica"
        )

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
        def accept_into(store: Store, handing_off: Handoff | None) -> Awaitable[Accepted]:
            return accept_update(
                store,
                draft,
                plan,
                now=now,
                idempotency_key=idempotency_key,
                request_digest=request_digest,
                handoff=handing_off,
                same_within=same_within,
            )

        while True:  # at most twice: the way back may end while a local accept waits for the lock
            with contextlib.suppress(NotShared):
                accepted = await self.shared(lambda s: accept_into(s, handoff))
                self.changed.set()
                return accepted
            async with self.local_writes:
                if self.mode is Mode.SHARED:
                    continue
                # Returning, the update goes back to the shared journal with the rest, unleased: whoever claims
                # it there sends it.
                with self.leasing(), _said_of_the_replica(draft.incident_id):
                    local = await accept_into(self.local, handoff if self.mode is Mode.DEGRADED else None)
                if not local.duplicate:
                    await self.local.note_accepted(local.update.id)
                    self.accepted_count += 1
            self.local_ids.update(claimed.delivery.id for claimed in local.handed_off)
            return local

    def follow(
        self,
        *,
        on_work: Callable[[], None],
        on_controls: Callable[[], None],
        on_holder_gone: Callable[[], None],
    ) -> AbstractAsyncContextManager[None]:
        """The shared journal's notices, and watch.py's loop: probing, refreshing the replica, the way back."""
        from broadcaster.store.failover.watch import following

        return following(self, on_work=on_work, on_controls=on_controls, on_holder_gone=on_holder_gone)

    # --- the delivery queue

    def _split(self, outcomes: Sequence[Outcome]) -> tuple[list[Outcome], list[Outcome]]:
        local = [o for o in outcomes if o.delivery_id in self.local_ids]
        return local, [o for o in outcomes if o.delivery_id not in self.local_ids]

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
        local, shared = self._split(outcomes)
        if local:
            await self.local.finish(owner, local)

        asked: dict[str, Any] = {"ordering": ordering, "owner": owner, "limit": limit, "now": now, "lease": lease}
        asked |= {"skip_targets": skip_targets, "sweep": sweep, "updates": updates}

        def claim_from(store: Store, recording: Sequence[Outcome]) -> Awaitable[ClaimResult]:
            return finish_and_claim(
                store,
                recording,
                channel,
                ordering=ordering,
                owner=owner,
                limit=limit,
                now=now,
                lease=lease,
                skip_targets=skip_targets,
                sweep=sweep,
                updates=updates,
            )

        with contextlib.suppress(NotShared):
            return await self.shared(lambda s: claim_from(s, shared))
        if shared:
            await self.finish(owner, shared)  # to the shared journal if it answers again, else held
        if self.mode is Mode.SHARED:  # the way back ended meanwhile: claim where the work is now
            return await self.finish_and_claim((), channel, **asked)
        if self.mode is Mode.RETURNING:
            return ClaimResult(claimed=[], expired=[], superseded=[])
        with self.leasing():
            result = await claim_from(self.local, ())
        self.local_ids.update(claimed.delivery.id for claimed in result.claimed)
        return result

    async def _hold_outcomes(self, owner: str, outcomes: Sequence[Outcome]) -> None:
        if outcomes:
            await self.hold(held.finish(owner, outcomes))

    async def finish(self, owner: str, outcomes: Sequence[Outcome]) -> int:
        local, shared = self._split(outcomes)
        recorded = await self.local.finish(owner, local) if local else 0
        if shared:
            try:
                recorded += await self.shared(lambda s: s.finish(owner, shared), returning_too=True)
            except NotShared:
                await self._hold_outcomes(owner, shared)
                recorded += len(shared)
        return recorded

    async def release(self, owner: str, delivery_ids: Collection[str] | None, *, interrupted: str = "") -> int:
        """Leases of the shared journal cannot be handed back while it is out of reach: they run out there."""
        local = None if delivery_ids is None else [i for i in delivery_ids if i in self.local_ids]
        shared = None if delivery_ids is None else [i for i in delivery_ids if i not in self.local_ids]
        released = await self.local.release(owner, local, interrupted=interrupted) if local != [] else 0
        if shared != []:
            with contextlib.suppress(NotShared):
                released += await self.shared(
                    lambda s: s.release(owner, shared, interrupted=interrupted), returning_too=True
                )
        return released

    async def renew(self, owner: str, delivery_ids: Collection[str], *, until: float) -> None:
        local = [i for i in delivery_ids if i in self.local_ids]
        if local:
            await self.local.renew(owner, local, until=until)
        shared = [i for i in delivery_ids if i not in self.local_ids]
        if shared:
            with contextlib.suppress(NotShared):
                await self.shared(lambda s: s.renew(owner, shared, until=until), returning_too=True)

    async def save_progress(self, owner: str, delivery_id: str, entries: Mapping[str, str]) -> None:
        if delivery_id in self.local_ids:
            return await self.local.save_progress(owner, delivery_id, entries)
        try:
            await self.shared(lambda s: s.save_progress(owner, delivery_id, entries), returning_too=True)
        except NotShared:
            await self.hold(held.progress(owner, delivery_id, entries))

    async def recover(self, *, now: float, owner_is_dead: Callable[[str], bool]) -> list[Delivery]:
        recovered = await self.local.recover(now=now, owner_is_dead=owner_is_dead)
        if self.settling():
            return recovered
        with contextlib.suppress(NotShared):
            recovered += await self.shared(lambda s: s.recover(now=now, owner_is_dead=owner_is_dead))
        return recovered

    def settling(self) -> bool:
        """Back on the shared journal for less than RETURN_GRACE: the other instances, back as well, are still
        writing what they held, and the leases that ran out there meanwhile are theirs until then."""
        return self.back_at is not None and time.monotonic() - self.back_at < RETURN_GRACE

    async def expire_due(self, *, now: float) -> list[Delivery]:
        expired = await self.local.expire_due(now=now)
        with contextlib.suppress(NotShared):
            expired += await self.shared(lambda s: s.expire_due(now=now))
        return expired

    async def requeue_failed(
        self, *, now: float, update_id: str | None = None, channel: str | None = None
    ) -> tuple[int, int]:
        # Only where they were recorded: the replica's copies of the shared journal's failed deliveries are
        # not its own to send.
        return await self.shared_only(
            lambda s: s.requeue_failed(now=now, update_id=update_id, channel=channel), "requeueing failed deliveries"
        )
