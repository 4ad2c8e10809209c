"""The failover store's loop, while a service follows it: ask the shared journal whether it answers (every
probe_every seconds), keep the replica current while it does (after each change, at most every few
seconds, and every refresh_every seconds), and when it answers again after an outage, take back what the
replica holds: first let attempts running from the replica end, then write what was held, then adopt
every update accepted locally (with what was done with its deliveries), then return to the shared journal."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final

from broadcaster.domain.errors import NotFoundError, StoreError, StoreUnreachable
from broadcaster.domain.models import new_id
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store.base import Delivery, DeliveryCopy, UpdateCopy
from broadcaster.store.failover import held
from broadcaster.store.failover.replica import HANDED_OVER
from broadcaster.store.failover.store import FailoverStore, Mode
from broadcaster.store.sqlite.importing import incidents_after, read_export

log = logging.getLogger("broadcaster.failover")

REFRESH_GAP: Final = 5.0
"""Seconds at least between two refreshes of the replica: a burst of updates costs one export, not one each."""
ACCEPT_MARGIN: Final = 300.0
"""Seconds before the store went degraded from which the replica's updates are looked for in the shared
journal: an update is stamped when its accept starts, which may be before the call that found the shared
journal out of reach."""
DRAIN_FOR: Final = 120.0
"""Seconds the way back waits for attempts running from the replica to end before it goes on regardless
(an attempt still running then is handed back as pending, and may be made again)."""


def following(
    store: FailoverStore,
    *,
    on_work: Callable[[], None],
    on_controls: Callable[[], None],
    on_holder_gone: Callable[[], None],
) -> AbstractAsyncContextManager[None]:
    """FailoverStore.follow: the watch loop, and the shared journal's notices, each a task until the block
    ends. (They stop on an event, not by cancelling: redis-py may swallow a cancellation that arrives during
    a command, and a task would go on.)"""

    def work() -> None:
        store.changed.set()
        on_work()

    async def hear(stop: asyncio.Event) -> None:
        """The shared journal's notices, begun once it answers (an instance may start in an outage)."""
        while not stop.is_set():
            try:
                async with store.primary.follow(on_work=work, on_controls=on_controls, on_holder_gone=on_holder_gone):
                    await stop.wait()
                    return
            except StoreUnreachable:
                pass
            except Exception:  # the lanes poll meanwhile; listening is tried again
                log.exception("following the shared journal's notices failed")
            await _pause(stop, store.probe_every)

    @contextlib.asynccontextmanager
    async def chores() -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(watch(store, on_work=on_work, stop=stop)), asyncio.create_task(hear(stop))]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    return chores()


async def watch(store: FailoverStore, *, on_work: Callable[[], None], stop: asyncio.Event) -> None:
    """Until `stop` is set: one step each probe_every seconds. No error ends it (the store would never come
    back to the shared journal): each is logged, and the next step tries again."""
    last_refresh = -REFRESH_GAP
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        try:
            if store.mode is Mode.SHARED:
                due = loop.time() - last_refresh
                if await _keep_current(store, refresh_due=due >= store.refresh_every, gap_passed=due >= REFRESH_GAP):
                    last_refresh = loop.time()
            elif await _come_back(store):
                last_refresh = -REFRESH_GAP
                store.changed.set()
                on_work()  # the lanes claim from the shared journal again
                continue
        except Exception:
            log.exception("the failover store's watch failed a step (trying again)")
        await _pause(stop, store.probe_every)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _keep_current(store: FailoverStore, *, refresh_due: bool, gap_passed: bool) -> bool:
    """Probe the shared journal, and refresh the replica when due; whether it refreshed."""
    try:
        await store.reachable()
        if await _lost_its_data(store):
            # Not refreshed from it: the replica's recent updates go back to it, as after an outage.
            await store.went_down(StoreUnreachable("the shared journal lost its data"))
            return False
        if (store.changed.is_set() and gap_passed) or refresh_due:
            store.changed.clear()
            await refresh(store)
            return True
    except StoreUnreachable as exc:
        await store.went_down(exc)
    except StoreError as exc:
        log.error("refreshing the local replica failed: %s", exc)
        return True  # tried: the next one waits its turn
    return False


async def _come_back(store: FailoverStore) -> bool:
    """Probe, and if the shared journal answers, take everything back; True once the store is shared again.
    Should the way back fail otherwise, sending goes on from the replica and it is tried again."""
    try:
        await probe(store)
        if await way_back(store):
            store.returns += 1
            return True
    except StoreUnreachable as exc:
        await store.went_down(exc)
    except StoreError as exc:
        log.error("taking work back to the shared journal failed (trying again): %s", exc)
        store.mode = Mode.DEGRADED if store.mode is Mode.RETURNING else store.mode
    return False


async def probe(store: FailoverStore) -> None:
    await store.primary.open()  # once: an instance started in an outage opens it now
    await store.reachable()
    await _lost_its_data(store)
    if store.mode is Mode.DEGRADED:
        store.mode = Mode.RETURNING
        log.warning("the shared journal answers again: taking back what this instance did without it")


async def _lost_its_data(store: FailoverStore) -> bool:
    """Whether the shared journal lost what it held since the last look (said once, by each instance)."""
    if not await store.lost_its_data():
        return False
    log.error(
        "the shared journal lost its data (Redis restarted with nothing persisted, or was flushed): this "
        "instance gives back the updates its replica holds from the %d minutes before and what it accepted "
        "since, then its replica follows the shared journal; restore the rest from Redis's appendonly file or "
        "from a `broadcaster kit` snapshot",
        ACCEPT_MARGIN // 60,
    )
    return True


async def refresh(store: FailoverStore) -> None:
    exported = await read_export(store.primary, publish_targets=store.publish_targets, every_delivery=False)
    await store.local.refresh(exported)


async def way_back(store: FailoverStore) -> bool:
    """Take back to the shared journal everything the replica holds; True once the store is shared again."""
    # Held outcomes first: leases of the shared journal run out while the replica's attempts end.
    records = await _write_held(store)
    await _drain(store)
    adopted = 0
    in_shared: set[str] = set()  # updates of the replica known to be in the shared journal: looked up once
    while True:
        records += await _write_held(store)
        adopted += await _adopt_local_updates(store, in_shared)
        async with store.local_writes:  # nothing accepted locally between this check and the switch
            if await store.local.held() or await _local_updates(store, in_shared):
                continue
            await store.local.mark_back()
            store.mode, store.since, store.reason = Mode.SHARED, None, ""
            store.accepted_count = 0
            store.back_at = time.monotonic()
            store.local_ids.clear()
        log.warning("back on the shared journal: %d update(s) and %d held record(s) taken back", adopted, records)
        return True


async def _write_held(store: FailoverStore) -> int:
    written = 0
    for n, record in await store.local.held():
        await held.write(store.primary, record)
        await store.local.drop_held(n)
        store.held_count -= 1
        written += 1
    return written


async def _drain(store: FailoverStore) -> None:
    """Until nothing is leased from the replica, nor being leased (a claim or an accept's handoff that began
    before the shared journal answered), for at most DRAIN_FOR."""
    loop = asyncio.get_running_loop()
    until = loop.time() + DRAIN_FOR
    while loop.time() < until:
        if not store.local_leasing and not await store.local.in_flight():
            return
        await asyncio.sleep(0.1)  # attempts end in their lanes, which tell nothing here: a short, bounded poll


async def _local_updates(store: FailoverStore, in_shared: set[str]) -> list[tuple[str, str]]:
    """Updates in the replica since the store went degraded that the shared journal does not have yet (those
    found there join `in_shared`, so that the way back's last look asks only about the ones since)."""
    since = store.since - ACCEPT_MARGIN if store.since is not None else 0.0
    missing = []
    for incident_id, update_id in await store.local.local_updates(since=since):
        if update_id in in_shared:
            continue
        try:
            await store.primary.update(update_id)
        except NotFoundError:
            missing.append((incident_id, update_id))
        else:
            in_shared.add(update_id)
    return missing


def _first_try(delivery: Delivery) -> bool:
    """Delivered at its first attempt: its own fields say it all (no attempt is logged for it, here or there)."""
    return delivery.state is DeliveryState.DELIVERED and delivery.attempts == 1


async def _adopt_local_updates(store: FailoverStore, in_shared: set[str]) -> int:
    owner = f"failover-{new_id()}"
    adopted = 0
    for incident_id, update_id in await store.local.adopting():  # a way back cut off mid-adopt: those first
        adopted += await _adopt(store, await _copy(store, incident_id, update_id, handed_over=True), owner)
    for incident_id, update_id in await _local_updates(store, in_shared):
        copy = await _copy(store, incident_id, update_id, handed_over=False)
        await store.local.begin_adopting(incident_id, update_id)
        adopted += await _adopt(store, copy, owner)
        in_shared.add(update_id)
    return adopted


async def _adopt(store: FailoverStore, copy: UpdateCopy, owner: str) -> int:
    adopted = await store.primary.adopt(copy, owner=owner, now=store.clock())
    await store.local.adopted(copy.update.id)
    return int(adopted)


async def _copy(store: FailoverStore, incident_id: str, update_id: str, *, handed_over: bool) -> UpdateCopy:
    """The update as the replica holds it, with what adopting it needs; `handed_over`: its deliveries handed
    over before an adopt that did not answer are read as the pending ones they were."""
    history = await store.local.history(incident_id)
    position = next(i for i, u in enumerate(history.updates) if u.id == update_id)
    deliveries = [
        dataclasses.replace(d, state=DeliveryState.PENDING, last_error="", finished_at=None)
        if handed_over and d.state is DeliveryState.SUPERSEDED and d.last_error == HANDED_OVER
        else d
        for d in await store.local.deliveries(update_id=update_id)
    ]
    progress = await store.local.progress([d.id for d in deliveries])
    copies = [
        DeliveryCopy(
            delivery=d,
            ordering=store.orderings.get(d.channel, Ordering.IN_ORDER),
            attempts=() if _first_try(d) else tuple(await store.local.attempts(d.id)),
            progress=progress.get(d.id, {}),
        )
        for d in deliveries
    ]
    key, digest = await store.local.request_of(update_id)
    return UpdateCopy(
        incident=incidents_after(history)[position],
        update=history.updates[position],
        deliveries=tuple(copies),
        idempotency_key=key,
        request_digest=digest,
    )
