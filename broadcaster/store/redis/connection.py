"""The Redis journal's connection: the client, its scripts, and Redis failures as the journal's errors.

A command that may have run is never sent again by the client (no automatic retries): a claim sent twice
would lease twice, an accept without an idempotency key would journal the update twice. A call that fails
is reported as not done; what it may have done meanwhile is what a crash leaves, and is recovered the same
way (leases run out; the same idempotency key answers the update it made)."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from broadcaster.domain.errors import JournalUnreachable, JournalWriteError, StoreError, StoreUnreachable, os_reason
from broadcaster.store.redis import lua_accept, lua_adopt, lua_queue, lua_reading

SOCKET_TIMEOUT: Final = 10.0
"""Seconds any one command may take; the longest is accepting a large fan-out, well under a second."""
CONNECT_TIMEOUT: Final = 5.0

# Replies that say the server is there but takes no write: out of memory under maxmemory, a snapshot that
# cannot be saved (stop-writes-on-bgsave-error), a read-only replica, too few replicas in reach.
_CANNOT_WRITE: Final = ("OOM", "MISCONF", "READONLY", "NOREPLICAS", "NOTENOUGHREPLICAS")


def masked(url: str) -> str:
    """`url` without its password: the store URL is shown in messages, and may carry one."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = quote(unquote(parts.username or ""), safe="")
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


KEEPALIVE: Final = {
    option: value
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3))
    if (option := getattr(socket, name, None)) is not None
}
"""TCP keepalive for a connection that waits with no read timeout (a follower's): a server gone without
closing it is noticed in about a minute and a half, not the system's two hours."""


def new_client(url: str, *, socket_timeout: float | None) -> redis.asyncio.Redis:
    """A client for `url`. With no socket timeout (a follower waiting for notices), TCP keepalive probes
    tell a dead connection from a quiet one."""
    waiting = {"socket_keepalive": True, "socket_keepalive_options": KEEPALIVE} if socket_timeout is None else {}
    try:
        return redis.asyncio.from_url(
            url,
            decode_responses=True,
            socket_timeout=socket_timeout,
            socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
            **waiting,
        )
    except ValueError as exc:  # a malformed URL: redis-py's message may quote it whole
        raise StoreError(f"store url {masked(url)!r} is not a Redis URL ({type(exc).__name__})") from None


class Scripts:
    """Every script, registered once per client (EVALSHA; loaded again if the server lost it)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        register = client.register_script
        self.accept_view = register(lua_accept.ACCEPT_VIEW)
        self.accept_commit = register(lua_accept.ACCEPT_COMMIT)
        self.remember_key = register(lua_accept.REMEMBER_KEY)
        self.adopt = register(lua_adopt.ADOPT)
        self.claim = register(lua_queue.CLAIM)
        self.finish = register(lua_queue.FINISH)
        self.release = register(lua_queue.RELEASE)
        self.renew = register(lua_queue.RENEW)
        self.save_progress = register(lua_queue.SAVE_PROGRESS)
        self.recover = register(lua_queue.RECOVER)
        self.expire_due = register(lua_queue.EXPIRE_DUE)
        self.requeue_failed = register(lua_queue.REQUEUE_FAILED)
        self.deliveries = register(lua_reading.DELIVERIES)
        self.incidents = register(lua_reading.INCIDENTS)
        self.histories = register(lua_reading.HISTORIES)
        self.attempts = register(lua_reading.ATTEMPTS)
        self.backlog = register(lua_reading.BACKLOG)
        self.suppress = register(lua_reading.SUPPRESS)
        self.set_paused = register(lua_reading.SET_PAUSED)


def text(value: bytes | str) -> str:
    """A reply as text. The client decodes every reply (decode_responses=True), which redis-py's types
    cannot express: they say bytes or str for every command."""
    return value.decode() if isinstance(value, bytes) else value


def optional_text(value: bytes | str | None) -> str | None:
    return None if value is None else text(value)


@dataclass(frozen=True, slots=True)
class Link:
    """An open journal: its client, its scripts, and the prefix of every key it uses."""

    client: redis.asyncio.Redis
    scripts: Scripts
    prefix: str

    async def run(self, script: AsyncScript, *args: str | int) -> Any:
        """Run `script` with ARGV (the key prefix, *args). Its reply is what the script returns, decoded by
        redis-py: a string (JSON, for replies that carry deliveries: records.decoded), an integer, None for
        false, or a list of them."""
        return await script(keys=[], args=(self.prefix, *args))


class Failures:
    """Redis failures as the journal's errors, with the store URL masked in every message."""

    def __init__(self, url: str) -> None:
        self._url = masked(url)
        password = urlsplit(url).password
        self._secrets = [s for s in {password, unquote(password or "")} if s]

    @contextlib.contextmanager
    def guard(self, doing: str, *, write: bool) -> Iterator[None]:
        """Raise what fails inside as StoreError, or JournalWriteError when a write was not acknowledged."""
        try:
            yield
        except redis.exceptions.ResponseError as exc:
            reply = self._scrub(str(exc))
            cannot_write = reply.startswith(_CANNOT_WRITE)
            error = JournalWriteError if cannot_write else StoreError
            raise error(f"journal {doing} failed at {self._url}: {reply}") from None
        except redis.exceptions.AuthenticationError as exc:
            raise StoreError(
                f"journal {doing} failed: Redis at {self._url} refused the login: {self._scrub(exc)}"
            ) from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            error = JournalUnreachable if write else StoreUnreachable
            what = "nothing was acknowledged" if write else "nothing was read"
            raise error(
                f"journal {doing} failed: cannot reach Redis at {self._url} ({self._why(exc)}); {what}"
            ) from None
        except redis.exceptions.RedisError as exc:
            raise StoreError(f"journal {doing} failed at {self._url}: {self._scrub(exc)}") from None

    def _why(self, error: Exception) -> str:
        """Why a connection failed, without redis-py's sentence around it: "Connection refused"."""
        cause = error.__cause__
        return os_reason(cause) if isinstance(cause, OSError) and cause.errno else self._scrub(error)

    def _scrub(self, error: object) -> str:
        """An error's text, any password in it replaced (redis-py's own messages carry none; a proxy's might)."""
        message = str(error) or type(error).__name__
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message


log = logging.getLogger("broadcaster.journal")

CLOCK_SKEW_WARNING: Final = 2.0
"""Seconds between this host's clock and the Redis server's that deserve a warning."""


def warn_of_clock_skew(skew: float) -> None:
    """Leases, retries and expiry are stamped with each instance's clock and compared by the others': hosts
    whose clocks disagree by a good part of a lease take each other's work early (or late)."""
    if abs(skew) > CLOCK_SKEW_WARNING:
        log.warning(
            "this host's clock is %.1f s %s the Redis server's: keep the instances' clocks in step (NTP), or "
            "one may take over another's deliveries before their lease has really run out",
            abs(skew),
            "behind" if skew > 0 else "ahead of",
        )
