"""A lane: one channel's worker. It claims that channel's due deliveries from the journal, runs them
with the channel's concurrency limit, timeout and retry policy, and records every outcome.

Lanes share nothing but the journal and the event loop, so a channel that hangs, fails or is paused
never holds back another: its attempts time out on their own clock, its failures back off on their
own schedule, and its breakers open on its own targets."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Callable, Collection, Sequence
from functools import partial

from broadcaster.domain.errors import StoreError
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.lanes.attempt import FailureKind, RunningAttempt, classify, heartbeat, job_for, watchdog
from broadcaster.lanes.events import EVENT_OF_STATE, EventKind, LaneEvent, LaneStatus, Observer, event_of, observing
from broadcaster.lanes.pauses import Pauses
from broadcaster.retry import Breakers, after_transient_failure
from broadcaster.store.base import Claimed, Outcome, Store, finish_and_claim
from channels.base import Channel
from config.settings import LanePolicy

log = logging.getLogger("broadcaster.lane")

RECORD_LINGER = 0.02
"""Seconds an outcome may wait, while the lane is busy, to be journaled in one transaction with others."""
HANDOFF_LIMIT = 2048
"""Deliveries a lane holds at most (running and waiting for a slot) when it takes an update's deliveries as
they are accepted. A bigger fan-out hands off this many; the lane claims the rest as it goes."""
DRAIN_LIMIT = 20.0
"""Seconds a stopping lane waits by default for its running attempts to finish, or (a fan-out) to reach a
safe point, before it interrupts them: within a container's usual grace period after SIGTERM."""
STOPPED = "the process stopped before the attempt finished"


class Lane:
    """Runs one channel's deliveries. `start()` it, `wake()` it when new work is journaled in this
    process (other processes' work is found by polling every `poll_interval` seconds), `stop()` it to
    finish what it runs and hand the rest back to the queue. All times in seconds.

    `updates`, when given, limits what the lane claims to those updates' deliveries and what holds them
    back (see Store.claim); the caller may add to it as it submits updates."""

    def __init__(
        self,
        *,
        name: str,
        channel: Channel,
        ordering: Ordering,
        policy: LanePolicy,
        store: Store,
        owner: str,
        observe: Observer | None = None,
        redact: Callable[[str], str] = str,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.5,
        lease: float = 60.0,
        rng: random.Random | None = None,
        updates: Collection[str] | None = None,
    ) -> None:
        self.name = name
        self.channel = channel
        self.ordering = ordering
        self.policy = policy
        self._store = store
        self._owner = owner
        self._observe = observing(observe, name)
        self._redact = redact
        self._clock = clock
        self._poll_interval = poll_interval
        self.lease = lease
        self._rng = rng or random.Random()
        self._updates = updates
        self._breakers = Breakers(policy.breaker_threshold, policy.breaker_cooldown)
        self._running: dict[str, RunningAttempt] = {}
        self._workers: set[asyncio.Task[None]] = set()
        # Deliveries leased ahead of a free slot, so a finishing attempt starts the next one at once instead
        # of waiting for a journal round trip. Only for IN_ORDER lanes: a LATEST_ONLY delivery held here could
        # no longer be superseded by a newer update.
        self._ready: collections.deque[Claimed] = collections.deque()
        self._prefetch = policy.concurrency if ordering is Ordering.IN_ORDER else 0
        self._unrecorded: list[tuple[Outcome, LaneEvent]] = []
        self._record_by: float | None = None
        self._interrupted: list[tuple[Claimed, str]] = []
        self._wake = asyncio.Event()
        self._retry_at: float | None = None
        self._pauses = Pauses(name, store, clock)
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle

    def start(self) -> None:
        renewing = heartbeat(self._store, self._owner, self._leased, lease=self.lease, clock=self._clock)
        loops = {
            "journal": self._journal_loop(),
            "heartbeat": renewing,
            "watchdog": watchdog(self._running, self.policy.timeout),
        }
        self._tasks = [asyncio.create_task(loop, name=f"lane-{self.name}-{role}") for role, loop in loops.items()]

    def wake(self, *, controls_changed: bool = False) -> None:
        if controls_changed:  # a pause or resume elsewhere: read them again now, not at the next poll
            self._pauses.expire()
        self._wake.set()

    def stopping(self) -> bool:
        return self._stopping

    def _leased(self) -> list[str]:
        """The deliveries this lane holds: running, or waiting for a slot."""
        return [*self._running, *(claimed.delivery.id for claimed in self._ready)]

    async def stop(self, *, drain: float = DRAIN_LIMIT) -> None:
        """Stop claiming, after the journal exchange in hand (a claim is never cut off half-way, leaving
        leases nobody holds), and hand back what waits for a slot. Let the running attempts finish, for
        up to `drain` seconds (never longer than the lane's timeout): a fan-out sees Job.stop_requested and
        ends after the recipient in hand, its progress saved. Interrupt what still runs then. Record every
        outcome, and hand the unfinished deliveries back, their attempts logged as interrupted."""
        if not self._tasks:
            return
        journal_loop, *others = self._tasks
        self._tasks = []
        self._stopping = True
        self._wake.set()
        try:
            await journal_loop
        finally:
            await self._drain(drain, others)

    async def _drain(self, drain: float, others: list[asyncio.Task[None]]) -> None:
        waiting = [claimed.delivery.id for claimed in self._ready]
        self._ready.clear()
        with contextlib.suppress(StoreError):  # a journal that cannot be written: the next run recovers them
            if waiting:  # first: they would wait through the drain unrenewed
                await self._store.release(self._owner, waiting)
        try:
            if self._workers:
                await asyncio.wait(set(self._workers), timeout=min(self.policy.timeout, drain))
            workers = list(self._workers)
            for worker in workers:  # all at once, then wait: none may finish between the two
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._interrupted += [(running.claimed, STOPPED) for running in self._running.values()]
            self._running.clear()
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await self._flush()
        finally:
            interrupted, self._interrupted = self._interrupted, []
            with contextlib.suppress(StoreError):
                for claimed, reason in interrupted:  # back to the queue, the attempt logged as interrupted
                    await self._store.release(self._owner, [claimed.delivery.id], interrupted=reason)
                    self._observe(event_of(EventKind.INTERRUPTED, claimed.delivery, reason))

    # --- taking deliveries as they are accepted (see store.Handoff)

    def handoff_room(self) -> int:
        """How many deliveries this lane takes from an update accepted in this process now: none while
        paused or stopping, and none for a LATEST_ONLY lane (a delivery waiting in the lane could not be
        superseded). On a store other instances share, only what it can start soon: the rest is theirs too."""
        if self._pauses.channel_paused or self._stopping or self.ordering is not Ordering.IN_ORDER:
            return 0
        limit = self.policy.concurrency + self._prefetch if self._store.shared_by_instances else HANDOFF_LIMIT
        return max(0, limit - len(self._running) - len(self._ready))

    def handoff_skips(self) -> frozenset[str]:
        """Targets it must not be handed: paused, or behind an open breaker."""
        return frozenset(self._breakers.blocked(self._clock())) | self._pauses.targets

    def take(self, claimed: Sequence[Claimed]) -> None:
        """Run these deliveries, leased to this lane's owner when their update was accepted."""
        self._ready.extend(claimed)
        self._start_ready()

    def status(self) -> LaneStatus:
        return LaneStatus(
            channel=self.name,
            paused=self._pauses.channel_paused,
            paused_targets=self._pauses.targets,
            in_flight=len(self._running) + len(self._ready),
            open_breakers=self._breakers.open_targets(),
        )

    # --- the journal: record what finished, claim what is due, in one transaction

    async def _journal_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self._exchange()
            except StoreError as exc:
                log.error("%s lane: journal unavailable, will retry: %s", self.name, exc)
            except Exception:  # a bug: it must not end the lane's claiming while /readyz says it runs
                log.exception("%s lane: unexpected error in the journal loop, will retry", self.name)
            await self._sleep()

    async def _exchange(self) -> None:
        """Record every outcome since the last call and claim enough to fill the free slots and the ready
        buffer, in one journal transaction. Whatever finished while the previous one ran goes into the
        next: one transaction for many outcomes when the lane is busy, one per outcome when it is not."""
        now = self._clock()
        housekeeping = self._pauses.stale(now, self._poll_interval)
        if housekeeping:
            await self._pauses.refresh(now)
        await self._release_held()
        batch, self._unrecorded, self._record_by = self._unrecorded, [], None
        room = self.policy.concurrency + self._prefetch - len(self._running) - len(self._ready)
        try:
            result = await finish_and_claim(
                self._store,
                [outcome for outcome, _ in batch],
                self.name,
                ordering=self.ordering,
                owner=self._owner,
                limit=0 if self._pauses.channel_paused or self._stopping else max(room, 0),
                now=now,
                lease=self.lease,
                skip_targets=self._breakers.blocked(now) | self._pauses.targets,
                sweep=housekeeping,
                updates=None if self._updates is None else frozenset(self._updates),
            )
        except BaseException:
            self._unrecorded[:0] = batch
            raise
        for _, event in batch:
            self._observe(event)
        for delivery in result.expired:
            self._observe(event_of(EventKind.EXPIRED, delivery, delivery.last_error))
        for delivery in result.superseded:
            self._observe(event_of(EventKind.SUPERSEDED, delivery, delivery.last_error))
        self._ready.extend(result.claimed)
        self._start_ready()

    def _start_ready(self) -> None:
        """Start enough workers for what is ready, within the concurrency limit (none once stopping)."""
        if self._stopping:
            return
        wanted = min(self.policy.concurrency, len(self._running) + len(self._ready))
        while len(self._workers) < wanted:
            worker = asyncio.create_task(self._work(), name=f"lane-{self.name}-worker")
            self._workers.add(worker)

    async def _work(self) -> None:
        """Run ready attempts one after another, and end when none is ready (or the lane stops). A busy
        fan-out reuses its workers rather than paying for a task per attempt, and an idle lane holds none."""
        worker = asyncio.current_task()
        assert worker is not None
        try:
            while self._ready and not self._stopping and len(self._running) < self.policy.concurrency:
                claimed = self._ready.popleft()
                running = self._running[claimed.delivery.id] = RunningAttempt(worker, claimed)
                await self._attempt(claimed, running)
                if running.timed_out and worker.cancelling():
                    worker.uncancel()  # the watchdog's cancel arrived after a channel ignored its own
        finally:
            self._workers.discard(worker)

    async def _release_held(self) -> None:
        """A pause also holds what was leased ahead: hand it back to the queue."""
        if not self._pauses.any:
            return  # nothing to look for (the buffer may hold a whole fan-out handed off to this lane)
        held = {c.delivery.id for c in self._ready if self._pauses.holds(c.delivery.target)}
        if held:
            await self._store.release(self._owner, held)
            self._ready = collections.deque(c for c in self._ready if c.delivery.id not in held)

    async def _sleep(self) -> None:
        timeout = self._poll_interval
        if self._retry_at is not None:
            timeout = min(timeout, max(0.0, self._retry_at - self._clock()))
            self._retry_at = None
        if self._record_by is not None:
            timeout = min(timeout, max(0.0, self._record_by - self._clock()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()

    # --- attempting

    async def _attempt(self, claimed: Claimed, running: RunningAttempt) -> None:
        delivery = claimed.delivery
        started = self._clock()
        if started >= delivery.expires_at:  # it waited for a slot past its time-to-live
            self._record(claimed, started, DeliveryState.EXPIRED, error="not delivered within its time-to-live")
            return
        self._breakers.started(delivery.target)
        self._observe(event_of(EventKind.STARTED, delivery))
        running.deadline = asyncio.get_running_loop().time() + self.policy.timeout
        try:
            save = partial(self._store.save_progress, self._owner, delivery.id)
            job = job_for(
                claimed,
                channel=self.name,
                save_progress=save,
                stop_requested=self.stopping,
                deadline=started + self.policy.timeout,
            )
            receipt = await self.channel.send(job)
        except asyncio.CancelledError as exc:
            if running.timed_out and running.task.uncancel() == 0:  # the watchdog's cancel: a timeout
                result = classify(TimeoutError(), claimed, self.policy.timeout, self._redact)
            elif running.task.cancelling():
                raise  # the lane is stopping
            else:  # raised inside the channel, nobody cancelled this worker: a bug like any other
                result = classify(RuntimeError(f"cancelled from within: {exc!r}"), claimed, 0, self._redact)
        except Exception as exc:
            result = classify(exc, claimed, self.policy.timeout, self._redact)
        else:
            self._breakers.succeeded(delivery.target)
            detail = self._redact(receipt.detail)
            self._record(claimed, started, DeliveryState.DELIVERED, detail=detail, external_id=receipt.external_id)
            return
        if result.kind is FailureKind.INTERRUPTED and self._stopping:
            # Stopped at a safe point because the lane is stopping: handed back by stop(), not counted.
            self._running.pop(delivery.id, None)
            self._interrupted.append((claimed, result.text))
        elif result.kind in (FailureKind.TRANSIENT, FailureKind.INTERRUPTED):  # interrupted unasked: a bug
            self._failed_transiently(claimed, started, result.text, result.retry_after)
        elif result.kind is FailureKind.GONE:
            self._record(claimed, started, DeliveryState.FAILED, error=result.text)
            await self._pauses.pause_target(delivery.target, result.text)
        else:
            self._breakers.succeeded(delivery.target)  # it answered with a refusal: the target itself is up
            self._record(claimed, started, DeliveryState.FAILED, error=result.text)

    def _failed_transiently(self, claimed: Claimed, started: float, error: str, retry_after: float | None) -> None:
        delivery = claimed.delivery
        now = self._clock()
        self._breakers.failed(delivery.target, now)
        decision = after_transient_failure(
            self.policy,
            attempts=delivery.attempts,
            now=now,
            expires_at=delivery.expires_at,
            error=error,
            retry_after=retry_after,
            rng=self._rng,
        )
        if decision.not_before is not None:
            self._retry_at = min(self._retry_at or decision.not_before, decision.not_before)
        self._record(claimed, started, decision.state, error=decision.error, not_before=decision.not_before)

    def _record(
        self,
        claimed: Claimed,
        started: float,
        state: DeliveryState,
        *,
        error: str = "",
        detail: str = "",
        external_id: str | None = None,
        not_before: float | None = None,
    ) -> None:
        delivery = claimed.delivery
        outcome = Outcome(
            delivery_id=delivery.id,
            state=state,
            attempt=delivery.attempts,
            started_at=started,
            finished_at=self._clock(),
            not_before=not_before,
            error=error,
            detail=detail,
            external_id=external_id,
        )
        event = event_of(EVENT_OF_STATE[state], delivery, error or detail, not_before)
        self._unrecorded.append((outcome, event))
        self._running.pop(delivery.id, None)
        if self._journal_now():
            self._wake.set()
        elif self._record_by is None:
            self._record_by = self._clock() + RECORD_LINGER

    def _journal_now(self) -> bool:
        """Journal the outcomes now, or let more gather for the same transaction (at most RECORD_LINGER)?
        Now when nothing else is running, when the ready buffer is half spent, or when half a buffer's
        worth of outcomes waits. A busy fan-out then records and claims in batches, not one by one."""
        half = self._prefetch // 2
        return not self._running or len(self._ready) <= half or len(self._unrecorded) > half

    async def _flush(self) -> None:
        """Record outcomes not yet recorded (on stop, when no more claims will follow)."""
        batch, self._unrecorded = self._unrecorded, []
        if not batch:
            return
        try:
            await self._store.finish(self._owner, [outcome for outcome, _ in batch])
        except BaseException:
            self._unrecorded[:0] = batch
            raise
        for _, event in batch:
            self._observe(event)
