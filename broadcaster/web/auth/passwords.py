"""Users' passwords, as argon2id hashes in [auth] users (argon2-cffi's defaults, RFC 9106's second
recommended parameters)."""

from __future__ import annotations

import asyncio
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
DUMMY_HASH = _HASHER.hash("a password nobody has")
"""Checked for an unknown user too, so the time a refusal takes does not tell whether the user exists."""
CHECKS_AT_ONCE: Final = 2
"""Password checks running at the same time, at most: each holds a thread and a CPU for a good tenth of a
second and 64 MiB, so a flood of logins queues here instead of taking every thread (and the memory)."""


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash or DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class PasswordChecks:
    """password_matches off the event loop (a check on the loop would stall every request and every delivery
    lane for its duration), at most CHECKS_AT_ONCE at a time."""

    def __init__(self, *, at_once: int = CHECKS_AT_ONCE) -> None:
        self._slots = asyncio.Semaphore(at_once)
        self._running: set[asyncio.Task[bool]] = set()

    async def matches(self, stored_hash: str | None, password: str) -> bool:
        await self._slots.acquire()
        check = asyncio.create_task(asyncio.to_thread(password_matches, stored_hash, password))
        self._running.add(check)
        # The slot is freed when the thread is done, not when the caller stops waiting: a request that times
        # out or goes away cannot free a slot while its check still holds a thread.
        check.add_done_callback(self._finished)
        return await asyncio.shield(check)

    def _finished(self, check: asyncio.Task[bool]) -> None:
        self._running.discard(check)
        self._slots.release()
