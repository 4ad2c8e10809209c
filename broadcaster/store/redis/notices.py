"""Notices between the processes that share a Redis journal, wherever they run, so that a running service
acts at once on what another did instead of at its next poll: pub/sub on one channel, PREFIX + "notices".

A process that journals new work (an accepted update, a requeue, leases handed back or recovered)
publishes "work <sender>", and one that pauses or resumes publishes "controls <sender>"; a follower hears
every other sender's notices (its own process's lanes know already). Publishing never fails an operation:
nobody listening, or a notice lost with a dropped connection, only leaves the work to the next poll.
A process that dies holding leases cannot be heard of (it says nothing; no pidfd reaches another host):
its leases run out and `recover` takes them back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Final

import redis.asyncio
import redis.exceptions

from broadcaster.store.redis.connection import Failures, new_client

log = logging.getLogger("broadcaster.journal")

WORK: Final = "work"
CONTROLS: Final = "controls"
RECONNECT_AFTER: Final = 1.0
"""Seconds before a follower whose connection dropped subscribes again."""


async def announce(client: redis.asyncio.Redis, channel: str, kind: str, sender: str) -> None:
    """Publish `kind` from `sender`; never raises."""
    try:
        await client.publish(channel, f"{kind} {sender}")
    except (redis.exceptions.RedisError, OSError) as exc:
        log.debug("journal notice %s not sent: %s", kind, type(exc).__name__)


@contextlib.asynccontextmanager
async def follow(
    url: str,
    channel: str,
    *,
    sender: str,
    on_work: Callable[[], None],
    on_controls: Callable[[], None],
) -> AsyncIterator[None]:
    """While inside, call `on_work` and `on_controls` for other senders' notices. The subscription has a
    connection of its own with no read timeout: it waits for notices, however long none comes."""
    client = new_client(url, socket_timeout=None)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        with Failures(url).guard("follow", write=False):
            await pubsub.subscribe(channel)
        listener = asyncio.create_task(
            _listen(pubsub, sender=sender, on_work=on_work, on_controls=on_controls), name="redis-journal-notices"
        )
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
    finally:
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await pubsub.aclose()
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            await client.aclose()


async def _listen(
    pubsub: redis.asyncio.client.PubSub,
    *,
    sender: str,
    on_work: Callable[[], None],
    on_controls: Callable[[], None],
) -> None:
    lost = False
    while True:
        try:
            if lost:  # reconnects and subscribes again, or raises while Redis is still out of reach
                await pubsub.ping()
                lost = False
                log.warning("journal notices: connected to Redis again")
                on_work()  # what was said meanwhile is lost: look now
                on_controls()
            async for message in pubsub.listen():
                kind, _, origin = str(message.get("data", "")).partition(" ")
                if origin == sender:
                    continue
                if kind == WORK:
                    on_work()
                elif kind == CONTROLS:
                    on_controls()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            if not lost:
                log.warning("journal notices: connection to Redis lost (%s); trying again", type(exc).__name__)
            lost = True
        except Exception:  # anything else (a server error, a callback's bug) must not end the notices for good
            log.exception("journal notices: unexpected error; listening again")
            lost = True
        await asyncio.sleep(RECONNECT_AFTER)
