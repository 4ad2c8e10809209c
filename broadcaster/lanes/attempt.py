"""One attempt of one delivery: the job the channel gets, what a failed attempt came to, the watchdog that
bounds each attempt by the lane's timeout, and the heartbeat that keeps the lane's leases."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from broadcaster.domain.errors import StoreError
from broadcaster.domain.records import record
from broadcaster.store.base import Claimed, Store
from channels.base import Interrupted, Job, PermanentError, SaveProgress, TargetGone, TransientError

log = logging.getLogger("broadcaster.lane")

WATCHDOG_TICK = 0.25
"""Seconds between the watchdog's rounds at most; at least a twentieth of the lane's timeout."""


class FailureKind(Enum):
    TRANSIENT = "transient"
    """Worth retrying (an error the channel classed as transient, a timeout, or a bug in the channel)."""
    PERMANENT = "permanent"
    GONE = "gone"
    """Permanent, and the target itself is gone: the lane pauses it."""
    INTERRUPTED = "interrupted"
    """Stopped at a safe point because the lane asked it to (Job.stop_requested)."""


@record
class Failure:
    kind: FailureKind
    text: str
    """What went wrong, scrubbed of secrets."""
    retry_after: float | None = None


@dataclass(slots=True)
class RunningAttempt:
    task: asyncio.Task[None]
    """The worker running the attempt."""
    claimed: Claimed
    deadline: float = float("inf")
    """Loop time after which the watchdog abandons the attempt."""
    timed_out: bool = False


def job_for(
    claimed: Claimed,
    *,
    channel: str,
    save_progress: SaveProgress,
    stop_requested: Callable[[], bool],
    deadline: float,
) -> Job:
    """The job a channel gets for a leased delivery."""
    delivery = claimed.delivery
    return Job(
        delivery_id=delivery.id,
        channel=channel,
        target=delivery.target,
        attempt=delivery.attempts,
        max_attempts=delivery.max_attempts,
        expires_at=delivery.expires_at,
        incident=claimed.incident,
        update=claimed.update,
        history=claimed.history,
        thread_parent=claimed.thread_parent,
        progress=claimed.progress,
        save_progress=save_progress,
        stop_requested=stop_requested,
        deadline=deadline,
    )


def classify(exc: Exception, claimed: Claimed, limit: float, redact: Callable[[str], str]) -> Failure:
    """What a failed attempt came to, from what the channel raised (a TimeoutError: the lane's `limit`
    seconds ran out). The text is scrubbed of secrets."""
    if isinstance(exc, Interrupted):
        return Failure(FailureKind.INTERRUPTED, redact(f"interrupted: {exc}"))
    if isinstance(exc, TransientError):
        return Failure(FailureKind.TRANSIENT, redact(str(exc)), retry_after=exc.retry_after)
    if isinstance(exc, TargetGone):
        return Failure(FailureKind.GONE, redact(str(exc)))
    if isinstance(exc, PermanentError):
        return Failure(FailureKind.PERMANENT, redact(str(exc)))
    if isinstance(exc, TimeoutError):
        return Failure(FailureKind.TRANSIENT, f"timed out after {limit:g}s")
    # A bug in the channel, not a verdict on the delivery: log it, retry it; if it keeps happening, the
    # delivery runs out of attempts and is parked as failed. The worker lives on.
    delivery = claimed.delivery
    log.error("%s lane: unexpected error delivering %s", delivery.channel, delivery.id, exc_info=exc)
    return Failure(FailureKind.TRANSIENT, redact(f"internal error: {type(exc).__name__}: {exc}"))


async def watchdog(running: Mapping[str, RunningAttempt], limit: float) -> None:
    """Abandon attempts that run past `limit` seconds, until cancelled. One periodic check for the whole lane
    costs less than a timer per attempt, at the price of abandoning an attempt up to one tick late."""
    tick = max(0.001, min(WATCHDOG_TICK, limit / 20))
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(tick)
        now = loop.time()
        for attempt_in_hand in running.values():
            if attempt_in_hand.deadline <= now and not attempt_in_hand.timed_out:
                attempt_in_hand.timed_out = True
                attempt_in_hand.task.cancel()


async def heartbeat(
    store: Store, owner: str, leased: Callable[[], list[str]], *, lease: float, clock: Callable[[], float]
) -> None:
    """Renew the leases on `leased()` every third of `lease` seconds, until cancelled: no sweep takes back a
    delivery while its lane still holds it."""
    while True:
        await asyncio.sleep(lease / 3)
        if held := leased():
            try:
                await store.renew(owner, held, until=clock() + lease)
            except StoreError as exc:
                log.error("cannot renew the leases of %d deliveries: %s", len(held), exc)
