"""One delivery's fan-out: one update mailed to each of its recipients over the pool's connections.

Each worker holds one pooled connection and runs one transaction at a time (channels/email/transaction.py
says what each reply means). Nothing is retried within an attempt: the lane's backoff decides when deferred
recipients are tried again. Every acceptance is saved to the journal before the worker's next transaction
(channels/email/progress.py), so a later attempt never mails an accepted recipient again, and a process
killed at any moment has at most one transaction per connection whose outcome it never learned.

When the lane stops (Job.stop_requested), or the attempt's time is nearly out, each worker ends after the
transaction in hand; what is left goes back to the queue for whoever delivers next. Nothing is cut off
mid-transaction unless a single transaction outlasts the drain or the relay's command timeout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from broadcaster.domain.errors import StoreError
from channels.email.message import RenderedMessage
from channels.email.pool import Connection, ConnectionPool, RelayError
from channels.email.progress import ProgressLog
from channels.email.suppression import SuppressionList
from channels.email.transaction import Result, Verdict, send_one

log = logging.getLogger("broadcaster.email")

SUPPRESS_INTERVAL: Final = 1.0
"""Seconds between appends of the hard bounces to the suppression file while a fan-out runs."""
MAX_CONNECTION_FAILURES: Final = 3
"""Consecutive dropped connections (or refused senders) after which one worker gives up for this attempt."""
REFUSAL_GUARD: Final = 25
"""Refusals in a row (no acceptance between them) that mean the relay refuses us, not the addresses (e.g.
"550 relaying denied", a quota or a block): the delivery then fails, and none of those recipients is
recorded as refused or suppressed."""
SAVE_ON_THE_WAY_OUT: Final = 5.0
"""Seconds an interrupted fan-out may spend saving what it did before it lets go."""


@dataclass(slots=True)
class Outcome:
    """How a fan-out ended. `left` maps recipients not done (deferred or never tried) to why."""

    accepted_now: int = 0
    left: dict[str, str] = field(default_factory=dict)
    relay_failures: list[RelayError] = field(default_factory=list)
    expired: bool = False
    refused_by_relay: bool = False
    stopped: bool = False
    """The lane asked it to stop; what is left was never tried."""
    out_of_time: bool = False
    """The attempt's time was nearly out; what is left was never tried."""
    unsaved: str = ""
    """Why the journal could not record an acceptance: the fan-out stopped there."""


class Fanout:
    """Mails `message` to `recipients` (addresses not yet done) with up to `workers` connections."""

    def __init__(
        self,
        *,
        recipients: Sequence[str],
        message: RenderedMessage,
        sender: str,
        pool: ConnectionPool,
        workers: int,
        log: ProgressLog,
        suppressions: SuppressionList,
        expires_at: float,
        stop_requested: Callable[[], bool],
        stop_by: float = float("inf"),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = deque(recipients)
        self._message = message
        self._sender = sender
        self._pool = pool
        self._workers = max(1, min(workers, len(recipients)))
        self._log = log
        self._suppressions = suppressions
        self._expires_at = expires_at
        self._stop_requested = stop_requested
        self._stop_by = stop_by
        self._clock = clock
        self._outcome = Outcome()
        self._bounces: dict[str, str] = {}
        """Hard bounces confirmed by a later acceptance: the relay was taking mail, so they are the
        recipients' own. Appended to the suppression list."""
        self._held_bounces: dict[str, str] = {}
        self._finished = asyncio.Event()

    async def run(self) -> Outcome:
        suppressing = asyncio.create_task(self._suppress_periodically())
        try:
            async with asyncio.TaskGroup() as workers:
                for _ in range(self._workers):
                    workers.create_task(self._work())
        except BaseException as exc:
            # The attempt timed out, the lane is stopping hard, or a worker hit a bug (the TaskGroup has
            # cancelled the others): keep what was done, within a short bound, and let the lane classify it.
            suppressing.cancel()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(SAVE_ON_THE_WAY_OUT):
                    await self._suppress()
                    await self._log.finish(keep_refusals=False)
            if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                raise exc.exceptions[0] from None
            raise
        self._finished.set()
        await suppressing
        outcome = self._outcome
        if not outcome.refused_by_relay:  # the relay was taking mail: the last refusals are the recipients'
            self._bounces |= self._held_bounces
        self._held_bounces = {}
        if self._queue:
            outcome.stopped = self._stop_requested()
            outcome.out_of_time = not outcome.stopped and self._clock() >= self._stop_by
        outcome.left.update((address, "not tried") for address in self._queue)
        await self._suppress()
        try:
            await self._log.finish(keep_refusals=not outcome.refused_by_relay)
        except StoreError as exc:
            outcome.unsaved = outcome.unsaved or str(exc)
        return outcome

    async def _work(self) -> None:
        connection: Connection | None = None
        failures = 0
        try:
            while (address := self._next()) is not None:
                if connection is None:
                    try:
                        connection = await self._pool.acquire()
                    except RelayError as exc:
                        self._queue.appendleft(address)
                        self._outcome.relay_failures.append(exc)
                        return
                try:
                    result = await send_one(
                        connection.smtp, self._sender, address, self._message.for_recipient(address)
                    )
                except BaseException:
                    self._pool.discard(connection)  # interrupted mid-transaction: its state is unknown
                    connection = None
                    raise
                self._record(address, result)
                if result.verdict is Verdict.ACCEPTED:
                    # Saved before this connection's next transaction: the bound on repeats after a crash.
                    try:
                        await self._log.save()
                    except StoreError as exc:
                        self._outcome.unsaved = str(exc)
                        return
                if result.verdict in (Verdict.DROPPED, Verdict.SENDER_REFUSED):
                    await self._let_go(connection, address, result)
                    connection = None
                    failures += 1
                    if failures >= MAX_CONNECTION_FAILURES:
                        permanent = result.verdict is Verdict.SENDER_REFUSED and result.code >= 500
                        self._outcome.relay_failures.append(RelayError(result.reason, permanent=permanent))
                        return
                elif result.verdict is not Verdict.DEFERRED:
                    failures = 0
        finally:
            if connection is not None:
                await self._pool.release(connection, reuse=True)

    def _next(self) -> str | None:
        """The next address to mail, or None when this worker is done: nothing left, the time-to-live has
        passed, the relay refuses us, the journal cannot record, the lane is stopping, or the attempt's time
        is nearly out."""
        outcome = self._outcome
        if not self._queue or outcome.expired or outcome.refused_by_relay or outcome.unsaved:
            return None
        now = self._clock()
        if self._stop_requested() or now >= self._stop_by:
            return None
        if now >= self._expires_at:
            outcome.expired = True
            return None
        return self._queue.popleft()

    async def _let_go(self, connection: Connection, address: str, result: Result) -> None:
        """Give up a connection that dropped, or whose relay refused our sender (then the recipient was not
        at fault: it goes back in the queue, and the relay is tried last for a while)."""
        if result.verdict is Verdict.SENDER_REFUSED:
            self._queue.appendleft(address)
            self._pool.avoid(connection.relay)
            await self._pool.release(connection, reuse=False)
        else:
            self._pool.discard(connection)

    def _record(self, address: str, result: Result) -> None:
        key = address.lower()
        if result.verdict is Verdict.ACCEPTED:
            self._log.accepted(key)
            self._outcome.accepted_now += 1
            self._bounces |= self._held_bounces
            self._held_bounces = {}
        elif result.verdict in (Verdict.BOUNCED, Verdict.REJECTED):
            self._log.refused(key, result.reason)
            if result.verdict is Verdict.BOUNCED:
                self._held_bounces[address] = result.reason
            if self._log.refusals_in_a_row >= REFUSAL_GUARD:
                self._outcome.refused_by_relay = True
        elif result.verdict is not Verdict.SENDER_REFUSED:  # a refused sender goes back in the queue
            self._outcome.left[address] = result.reason

    async def _suppress_periodically(self) -> None:
        while not self._finished.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SUPPRESS_INTERVAL):
                    await self._finished.wait()
            await self._suppress()

    async def _suppress(self) -> None:
        """Append the confirmed hard bounces to the suppression list."""
        if not self._bounces:
            return
        bounces, self._bounces = self._bounces, {}
        try:
            await self._suppressions.add(bounces)
        except OSError as exc:
            self._bounces.update(bounces)
            # Sending matters more than bookkeeping: carry on, and try again at the next turn.
            log.warning("email: cannot add bounces to the suppression list yet: %s", exc)
