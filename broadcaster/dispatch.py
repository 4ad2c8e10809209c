"""Runs one lane per channel inside this process: the CLI's in-process fan-out and the service's workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from types import TracebackType
from typing import Self, TypeVar

from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.lanes import Lane, LaneEvent, LaneStatus, Observer
from broadcaster.lanes.events import STATE_AFTER
from broadcaster.lanes.lane import DRAIN_LIMIT
from broadcaster.runtime import Runtime
from broadcaster.store.base import Accepted, Claimed, Delivery, Handoff
from channels.base import Channel, ChannelContext

log = logging.getLogger("broadcaster.dispatch")

IntakeObserver = Callable[[Accepted], None]
T = TypeVar("T")


class Dispatcher:
    """Builds the chosen channels (default: every enabled one), runs a lane for each, and stops them,
    handing unfinished deliveries back to the journal. Use as an async context manager.

    `updates`, when given, is the work these lanes take: the deliveries of those updates (and of each update
    submitted here, which joins the set) and what holds them back; otherwise every due delivery. `drain` is
    how long stopping waits for attempts in hand to finish (see Lane.stop)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        channels: Collection[str] | None = None,
        observe: Observer | None = None,
        poll_interval: float = 0.5,
        updates: set[str] | None = None,
        drain: float = DRAIN_LIMIT,
    ) -> None:
        self._runtime = runtime
        self._updates = updates
        self._drain = drain
        self._names = list(channels) if channels is not None else runtime.active_channels()
        self._observers: list[Observer] = [observe] if observe is not None else []
        self._intake_observers: list[IntakeObserver] = []
        self._poll_interval = poll_interval
        self._lanes: dict[str, Lane] = {}
        self._channels: list[Channel] = []

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Build every channel first, so a channel that cannot be built fails before any lane runs."""
        runtime = self._runtime
        context = ChannelContext(runtime.settings, runtime.store, drill=runtime.drill)
        redact = runtime.settings.scrubber
        try:
            for name in self._names:
                spec = runtime.registry.get(name)
                channel = spec.load().create(context)
                self._channels.append(channel)
                self._lanes[name] = Lane(
                    name=name,
                    channel=channel,
                    ordering=spec.ordering,
                    policy=runtime.settings.lane_policy(name),
                    store=runtime.store,
                    owner=runtime.owner,
                    observe=self._on_event,
                    redact=redact,
                    clock=runtime.clock,
                    poll_interval=self._poll_interval,
                    lease=runtime.settings.service.lease,
                    updates=self._updates,
                )
        except BaseException:
            await self._close_channels()
            raise
        for lane in self._lanes.values():
            lane.start()

    async def stop(self) -> None:
        try:
            results = await asyncio.gather(
                *(lane.stop(drain=self._drain) for lane in self._lanes.values()), return_exceptions=True
            )
            for name, result in zip(self._lanes, results, strict=True):
                if isinstance(result, BaseException):
                    log.error("stopping the %s lane failed: %r", name, result)
        finally:
            self._lanes.clear()
            await self._close_channels()

    async def _close_channels(self) -> None:
        for channel in self._channels:
            try:
                await channel.aclose()
            except Exception:
                log.exception("closing the %s channel failed", channel.name)
        self._channels.clear()

    async def submit(
        self,
        draft: UpdateDraft,
        *,
        idempotency_key: str | None = None,
        request_digest: str | None = None,
        same_within: float | None = None,
    ) -> Accepted:
        """Journal an update (durable when this returns) and hand its deliveries to these lanes in the same
        transaction, as far as they have room (see store.Handoff); the lanes claim the rest."""
        runtime = self._runtime
        handoff = Handoff(
            owner=runtime.owner,
            # The longest lane lease: no lane's heartbeat comes later than a third of its own lease.
            lease_until=runtime.clock() + max((lane.lease for lane in self._lanes.values()), default=0.0),
            room={name: lane.handoff_room() for name, lane in self._lanes.items()},
            skip_targets={name: lane.handoff_skips() for name, lane in self._lanes.items()},
        )
        accepting = asyncio.ensure_future(
            runtime.submit(
                draft,
                idempotency_key=idempotency_key,
                request_digest=request_digest,
                handoff=handoff,
                same_within=same_within,
            )
        )
        try:
            accepted = await asyncio.shield(accepting)
        except asyncio.CancelledError:
            # The journal thread commits whether or not anyone waits. What it handed off must reach the lanes,
            # so that stopping hands it back rather than leaving it leased until a recovery counts an attempt
            # that never ran. The accept takes milliseconds; then the cancellation goes on.
            with contextlib.suppress(Exception):
                self._take((await accepting).handed_off)
            raise
        if self._updates is not None:
            self._updates.add(accepted.update.id)
        self._take(accepted.handed_off)
        self.wake()
        for observer in list(self._intake_observers):
            try:
                observer(accepted)
            except Exception:  # the update is journaled: an observer's bug must not turn that into an error
                log.exception("an observer of accepted updates failed")
        return accepted

    def _take(self, handed_off: Sequence[Claimed]) -> None:
        by_channel: dict[str, list[Claimed]] = {}
        for claimed in handed_off:
            by_channel.setdefault(claimed.delivery.channel, []).append(claimed)
        for name, claimed_list in by_channel.items():
            self._lanes[name].take(claimed_list)

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Have `observer` told of every lane event from now on (the ledger's live page, the metrics);
        returns what ends it."""
        return _listen(self._observers, observer)

    def subscribe_accepted(self, observer: IntakeObserver) -> Callable[[], None]:
        """Have `observer` told of every update journaled through `submit` from now on, replayed
        Idempotency-Keys included (Accepted.duplicate); returns what ends it. Every intake of the service
        (the API, the form, chatops) submits here, so this is where the metrics count accepted updates."""
        return _listen(self._intake_observers, observer)

    def wake(self) -> None:
        """New work was journaled (here, or by another process that said so): look for it now rather than at
        the next poll."""
        for lane in self._lanes.values():
            lane.wake()

    def controls_changed(self) -> None:
        """A pause or resume was journaled by another process: every lane reads them again now."""
        for lane in self._lanes.values():
            lane.wake(controls_changed=True)

    def statuses(self) -> list[LaneStatus]:
        return [lane.status() for lane in self._lanes.values()]

    def _on_event(self, event: LaneEvent) -> None:
        for observer in list(self._observers):
            try:
                observer(event)
            except Exception:  # an observer's bug is never the lanes' problem
                log.exception("an observer of the lanes failed on %s", event.kind)

    async def settle(self, update_ids: Collection[str], *, wait: float) -> list[Delivery]:
        """Wait until every delivery of these updates is final or cannot move before the deadline (its
        lane or target is paused, or its next attempt is due after it). Returns the deliveries as the
        journal has them then.

        Progress is followed from the lanes' events; the journal is read again only once per poll
        interval (for what other processes did), so waiting on a thousand deliveries costs no more
        journal reads than waiting on one. Any number of callers may wait at once (the CLI's send, each
        chat command's summary), each on its own updates."""
        clock = self._runtime.clock
        deadline = clock() + wait
        watched: dict[str, Delivery] = {}
        seen: dict[str, Delivery] = {}
        """Lane events that came while the journal was first read: newer than what it says."""
        changed = asyncio.Event()

        def follow(event: LaneEvent) -> None:
            now_is = replace(
                event.delivery, state=STATE_AFTER[event.kind], not_before=event.not_before or event.delivery.not_before
            )
            if event.delivery.id in watched:
                watched[event.delivery.id] = now_is
                changed.set()
            elif event.delivery.update_id in update_ids:
                seen[event.delivery.id] = now_is

        stop_following = self.subscribe(follow)  # before the first read: no event falls between the two
        try:
            watched.update({d.id: d for d in await self._deliveries(update_ids)})
            watched.update({delivery_id: d for delivery_id, d in seen.items() if delivery_id in watched})
            read_at = clock()
            while not all(d.state.is_final or self._stuck(d, deadline) for d in watched.values()):
                if clock() >= deadline:
                    break
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(self._poll_interval, max(0.0, deadline - clock()))):
                        await changed.wait()
                if clock() - read_at >= self._poll_interval:
                    watched.update({d.id: d for d in await self._deliveries(update_ids)})
                    read_at = clock()
        finally:
            stop_following()
        return await self._deliveries(update_ids)

    async def _deliveries(self, update_ids: Collection[str]) -> list[Delivery]:
        found: list[Delivery] = []
        for update_id in update_ids:
            found += await self._runtime.store.deliveries(update_id=update_id)
        return found

    def _stuck(self, delivery: Delivery, deadline: float) -> bool:
        lane = self._lanes.get(delivery.channel)
        if lane is None or delivery.state is not DeliveryState.PENDING:
            return lane is None
        status = lane.status()
        return status.paused or delivery.target in status.paused_targets or delivery.not_before > deadline


def _listen(listeners: list[T], listener: T) -> Callable[[], None]:
    """Add `listener` to `listeners`; returns what removes it again."""
    listeners.append(listener)

    def stop() -> None:
        if listener in listeners:
            listeners.remove(listener)

    return stop
