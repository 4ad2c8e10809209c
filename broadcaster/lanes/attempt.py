"""One attempt of one delivery: the channel's send, bounded by the lane's timeout, and what it came to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from broadcaster.domain.records import record
from broadcaster.store.base import Claimed
from channels.base import Channel, Interrupted, Job, PermanentError, TargetGone, TransientError

log = logging.getLogger("broadcaster.lane")

WATCHDOG_TICK = 0.25
"""Seconds between the watchdog's rounds at most; at least a twentieth of the lane's timeout."""


class Verdict(Enum):
    DELIVERED = "delivered"
    TRANSIENT = "transient"
    """Worth retrying (an error the channel classed as transient, a timeout, or a bug in the channel)."""
    PERMANENT = "permanent"
    GONE = "gone"
    """Permanent, and the target itself is gone: the lane pauses it."""
    INTERRUPTED = "interrupted"
    """Stopped at a safe point because the lane asked it to (Job.stop_requested)."""


@record
class Result:
    verdict: Verdict
    text: str
    """The receipt's detail, or what went wrong; scrubbed of secrets."""
    external_id: str | None = None
    retry_after: float | None = None


@dataclass(slots=True)
class RunningAttempt:
    task: asyncio.Task[None]
    """The worker running the attempt."""
    claimed: Claimed
    deadline: float = float("inf")
    """Loop time after which the watchdog abandons the attempt."""
    timed_out: bool = False


async def attempt(
    channel: Channel, job: Job, running: RunningAttempt, *, limit: float, redact: Callable[[str], str]
) -> Result:
    """Run `job` on `channel`, abandoned after `limit` seconds, and classify how it ended. Never raises for
    what the channel did; a cancel that is not the watchdog's (the lane stopping) goes on up."""
    running.deadline = asyncio.get_running_loop().time() + limit
    try:
        try:
            receipt = await channel.send(job)
        except asyncio.CancelledError:
            # The watchdog's cancel is a timeout; any other goes on up.
            if running.timed_out and running.task.uncancel() == 0:
                raise TimeoutError from None
            raise
    except Exception as exc:
        return _classify(exc, job, limit, redact)
    return Result(Verdict.DELIVERED, redact(receipt.detail), external_id=receipt.external_id)


def _classify(exc: Exception, job: Job, limit: float, redact: Callable[[str], str]) -> Result:
    if isinstance(exc, Interrupted):
        return Result(Verdict.INTERRUPTED, redact(f"interrupted: {exc}"))
    if isinstance(exc, TransientError):
        return Result(Verdict.TRANSIENT, redact(str(exc)), retry_after=exc.retry_after)
    if isinstance(exc, TargetGone):
        return Result(Verdict.GONE, redact(str(exc)))
    if isinstance(exc, PermanentError):
        return Result(Verdict.PERMANENT, redact(str(exc)))
    if isinstance(exc, TimeoutError):
        return Result(Verdict.TRANSIENT, f"timed out after {limit:g}s")
    # A bug in the channel, not a verdict on the delivery: log it, retry it; if it keeps happening, the
    # delivery runs out of attempts and is parked as failed. The worker lives on.
    log.error("%s lane: unexpected error delivering %s", job.channel, job.delivery_id, exc_info=exc)
    return Result(Verdict.TRANSIENT, redact(f"internal error: {type(exc).__name__}: {exc}"))


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


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
