"""One delivery's fan-out: one update mailed to each of its recipients over the pool's connections.

Each recipient gets its own transaction (its own To and List-Unsubscribe headers), and its own verdict:
- 2xx: accepted;
- 5xx to RCPT: a hard bounce, refused for good and added to the suppression list;
- 5xx to DATA: this message refused for this recipient (not suppressed: the address is not at fault);
- 4xx: deferred to the lane's next attempt; 421, a dropped connection or a timeout also close the
  connection, and the worker carries on over a new one.
Nothing is retried within an attempt: the lane's backoff decides when deferred recipients are tried again.
What was accepted or refused is checkpointed (every CHECKPOINT_INTERVAL seconds, at the end, and on the way
out when cancelled), so a later attempt never mails an accepted recipient again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

import aiosmtplib

from broadcaster.domain.errors import StoreError
from channels.base import Checkpoint
from channels.email.message import RenderedMessage
from channels.email.pool import Connection, ConnectionPool, RelayError, reply_text
from channels.email.suppression import SuppressionList

log = logging.getLogger("broadcaster.email")

CHECKPOINT_INTERVAL: Final = 1.0
"""Seconds between durable saves of progress while a batch runs."""
MAX_CONNECTION_FAILURES: Final = 3
"""Consecutive dropped connections (or refused senders) after which one worker gives up for this attempt."""
REFUSAL_GUARD: Final = 25
"""Refusals with no acceptance at all that mean the relay refuses us, not the addresses (e.g. "550 relaying
denied"): the delivery then fails without suppressing anyone."""


class Verdict(Enum):
    """What one recipient's transaction came to (see the module docstring)."""

    ACCEPTED = "accepted"
    BOUNCED = "bounced"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    DROPPED = "dropped"
    SENDER_REFUSED = "sender refused"


@dataclass(frozen=True, slots=True)
class Result:
    """A verdict with the server's reply ("550 5.1.1 No such user"); `code` is 0 when there was none."""

    verdict: Verdict
    reason: str = ""
    code: int = 0


def _by_code(code: int, message: str, *, at_rcpt: bool) -> Result:
    reason = reply_text(code, message)
    if code == 421:  # the server is closing this connection
        return Result(Verdict.DROPPED, reason, code)
    if 500 <= code < 600:
        return Result(Verdict.BOUNCED if at_rcpt else Verdict.REJECTED, reason, code)
    return Result(Verdict.DEFERRED, reason, code)


async def send_one(smtp: aiosmtplib.SMTP, sender: str, address: str, message: bytes) -> Result:
    """One transaction for one recipient, classified; never raises for what the server answered."""
    try:
        await smtp.sendmail(sender, [address], message)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients[0]
        return _by_code(refused.code, refused.message, at_rcpt=True)
    except aiosmtplib.SMTPSenderRefused as exc:
        if exc.code == 421:
            return Result(Verdict.DROPPED, reply_text(exc.code, exc.message), exc.code)
        return Result(Verdict.SENDER_REFUSED, f"sender refused ({reply_text(exc.code, exc.message)})", exc.code)
    except aiosmtplib.SMTPResponseException as exc:
        return _by_code(exc.code, exc.message, at_rcpt=False)
    except (aiosmtplib.SMTPException, OSError) as exc:  # disconnected, timed out, reset
        return Result(Verdict.DROPPED, f"connection lost ({type(exc).__name__})")
    return Result(Verdict.ACCEPTED)


class Progress:
    """Who is done for this delivery, keyed by lower-cased address. Saved through Job.checkpoint as
    {"accepted": [address, ...], "refused": {address: "550 reason", ...}}."""

    def __init__(self, saved: Mapping[str, Any]) -> None:
        accepted, refused = saved.get("accepted", []), saved.get("refused", {})
        if not (isinstance(accepted, list) and isinstance(refused, dict)):
            log.warning("ignoring unreadable email progress of an earlier attempt")
            accepted, refused = [], {}
        self.accepted: dict[str, None] = dict.fromkeys(str(a) for a in accepted)
        self.refused: dict[str, str] = {str(k): str(v) for k, v in refused.items()}

    def done(self, key: str) -> bool:
        return key in self.accepted or key in self.refused

    def snapshot(self) -> dict[str, Any]:
        return {"accepted": list(self.accepted), "refused": dict(self.refused)}


@dataclass(slots=True)
class Outcome:
    """How a fan-out ended. `left` maps recipients not done (deferred or never tried) to why."""

    accepted_now: int = 0
    left: dict[str, str] = field(default_factory=dict)
    relay_failures: list[RelayError] = field(default_factory=list)
    expired: bool = False
    refused_by_relay: bool = False


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
        progress: Progress,
        checkpoint: Checkpoint,
        suppressions: SuppressionList,
        expires_at: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = deque(recipients)
        self._message = message
        self._sender = sender
        self._pool = pool
        self._workers = max(1, min(workers, len(recipients)))
        self._progress = progress
        self._checkpoint = checkpoint
        self._suppressions = suppressions
        self._expires_at = expires_at
        self._clock = clock
        self._outcome = Outcome()
        self._bounces: dict[str, str] = {}
        self._changes = 0
        self._saved_changes = 0
        self._save_lock = asyncio.Lock()
        self._finished = asyncio.Event()

    async def run(self) -> Outcome:
        saver = asyncio.create_task(self._save_periodically())
        try:
            async with asyncio.TaskGroup() as workers:
                for _ in range(self._workers):
                    workers.create_task(self._work())
        except BaseException as exc:
            # The attempt timed out, the lane is stopping, or a worker hit a bug (the TaskGroup has cancelled
            # the others): keep what was done, within a short bound, and let the lane classify the rest.
            saver.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._save(final=False), timeout=5)
            if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                raise exc.exceptions[0] from None
            raise
        self._finished.set()
        await saver
        outcome = self._outcome
        if outcome.refused_by_relay:
            self._bounces.clear()  # the relay refused us, not these addresses: suppress nobody
        outcome.left.update((address, "not tried") for address in self._queue)
        await self._save(final=True)
        return outcome

    async def _work(self) -> None:
        connection: Connection | None = None
        failures = 0
        try:
            while self._queue and not (self._outcome.expired or self._outcome.refused_by_relay):
                if self._clock() >= self._expires_at:
                    self._outcome.expired = True
                    return
                address = self._queue.popleft()
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
                if result.verdict in (Verdict.DROPPED, Verdict.SENDER_REFUSED):
                    if result.verdict is Verdict.SENDER_REFUSED:
                        self._queue.appendleft(address)  # not this recipient's fault: another relay may take it
                        self._pool.avoid(connection.relay)
                        await self._pool.release(connection, reuse=False)
                    else:
                        self._pool.discard(connection)
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

    def _record(self, address: str, result: Result) -> None:
        key = address.lower()
        if result.verdict is Verdict.ACCEPTED:
            self._progress.accepted[key] = None
            self._outcome.accepted_now += 1
        elif result.verdict in (Verdict.BOUNCED, Verdict.REJECTED):
            self._progress.refused[key] = result.reason
            if result.verdict is Verdict.BOUNCED:
                self._bounces[address] = result.reason
            if not self._progress.accepted and len(self._progress.refused) >= REFUSAL_GUARD:
                self._outcome.refused_by_relay = True
        else:
            if result.verdict is not Verdict.SENDER_REFUSED:  # a refused sender goes back in the queue
                self._outcome.left[address] = result.reason
            return
        self._changes += 1

    async def _save_periodically(self) -> None:
        while not self._finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), timeout=CHECKPOINT_INTERVAL)
            await self._save(final=False)

    async def _save(self, *, final: bool) -> None:
        """Suppress the bounces, then checkpoint the progress. Bounces wait for a first acceptance (or the
        end) so that a relay refusing everyone is caught by the guard before anyone is suppressed."""
        async with self._save_lock:
            changes = self._changes
            bounces: dict[str, str] = {}
            if self._bounces and (final or self._progress.accepted):
                bounces, self._bounces = self._bounces, {}
            if changes == self._saved_changes and not bounces:
                return
            try:
                await self._suppressions.add(bounces)
                await self._checkpoint(self._progress.snapshot())
            except BaseException as exc:
                self._bounces.update(bounces)
                if not isinstance(exc, StoreError | OSError):
                    raise
                # Sending matters more than bookkeeping: carry on, and try again at the next save.
                log.warning("email: cannot save delivery progress yet: %s", exc)
            else:
                self._saved_changes = changes
