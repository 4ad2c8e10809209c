"""What `broadcaster drill` may reach: no drill target may equal a real one (config.drill says what "equal"
means). The real targets are the configuration's, the subscribers file's addresses, and the journal's own
subscribers (who subscribed themselves, or whom an operator added), read read-only: the SQLite journal is
opened read-only and never created, a Redis journal is asked with a short timeout. When the journal's
subscribers cannot be read, the drill cannot tell its email and webhook targets from them, so those
channels are withheld from the drill (or the drill refused, when they were asked for by name) rather than
drilled unchecked."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from broadcaster.domain.errors import StoreError
from broadcaster.store import open_store
from broadcaster.store.sqlite import SqliteStore
from config import ConfigError, Settings
from config.drill import DrillSettings
from config.email import EmailSettings

JOURNAL_TIMEOUT: Final = 5.0
"""Seconds for reading the real journal's subscribers: a drill checks, it does not wait on a sick journal."""
CHECKED_IN_JOURNAL: Final = ("email", "webhook")
"""The channels whose targets the journal's subscribers could be."""
# Any address-shaped run of a subscribers file, in either of its forms (one per line, or CSV): finding
# more than the channel would mail only makes the comparison stricter.
_ADDRESS_IN_TEXT: Final = re.compile(r"[^\s,;\"'<>]+@[^\s,;\"'<>]+")


@dataclass(frozen=True, slots=True)
class Withheld:
    """A channel the drill leaves out, and why."""

    channel: str
    reason: str


@dataclass(frozen=True, slots=True)
class JournalSubscribers:
    addresses: list[str]
    hooks: list[str]


async def check_targets(settings: Settings, *, named: Collection[str]) -> list[Withheld]:
    """ConfigError (exit 2) naming each drill target that equals a real one; nothing is journaled or sent.
    Returns the channels withheld because the journal's subscribers cannot be read; `named`: the channels
    asked for with --channel (empty: all), of which none may be withheld."""
    drill = settings.drill
    checked = [name for name in CHECKED_IN_JOURNAL if _has_targets(drill, name) and (not named or name in named)]
    joined, unreadable = JournalSubscribers([], []), ""
    if checked:
        try:
            joined = await journal_subscribers(settings.store_url)
        except StoreError as exc:
            unreadable = str(exc)
    found = drill.same_as_real(
        subscribers=_file_addresses(settings.email) if drill.email_recipients else [],
        webhook=settings.webhook,
        mirror=settings.mirror,
        x=settings.x,
        joined=joined.addresses,
        hooks=joined.hooks,
        data_dir=settings.service.data_dir,
    )
    if found:
        raise ConfigError(
            "the drill would reach real targets, so it was not run: " + "; ".join(found) + ". A drill target must "
            "be one of its own (a test address, receiver, directory or X account)."
        )
    if not unreadable:
        return []
    why = (
        f"cannot read the journal's subscribers ({unreadable}), so the drill cannot make sure its "
        f"{' and '.join(checked)} targets are not among them"
    )
    if named:
        raise ConfigError(f"{why}; the drill was not run")
    return [Withheld(name, why) for name in checked]


def _has_targets(drill: DrillSettings, channel: str) -> bool:
    return bool(drill.email_recipients if channel == "email" else drill.webhook_targets)


def _file_addresses(email: EmailSettings) -> list[str]:
    """Every address in the real subscribers file (none when there is no file)."""
    path = email.subscribers_file
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(
            f"cannot read [email] subscribers_file {str(path)!r} ({exc.strerror}) to make sure no "
            "[drill] email_recipients is a subscriber; the drill was not run"
        ) from None
    return [
        address
        for line in text.splitlines()
        if not line.lstrip().startswith("#")
        for address in _ADDRESS_IN_TEXT.findall(line)
    ]


async def journal_subscribers(store_url: str) -> JournalSubscribers:
    """The real journal's email addresses and webhook URLs, read without writing to it. A journal that does
    not exist yet has none. Raises StoreError when they cannot be read."""
    store = open_store(store_url)
    if isinstance(store, SqliteStore):
        return await asyncio.to_thread(_sqlite_subscribers, store.path)
    from broadcaster.store.redis import RedisStore  # a backend is imported only when used

    journal = RedisStore(store_url, socket_timeout=JOURNAL_TIMEOUT)
    try:
        async with asyncio.timeout(JOURNAL_TIMEOUT * 2):
            await journal.open()
            emails, hooks = await journal.subscribers("email"), await journal.subscribers("webhook")
    except TimeoutError:
        raise StoreError(f"no answer within {JOURNAL_TIMEOUT * 2:g} s") from None
    finally:
        await journal.close()
    return JournalSubscribers([s.address for s in emails], [s.address for s in hooks])


def _sqlite_subscribers(path: Path) -> JournalSubscribers:
    if not path.is_file():
        return JournalSubscribers([], [])
    uri = f"{path.absolute().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=JOURNAL_TIMEOUT)) as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'subscribers'").fetchone():
                rows = conn.execute("SELECT kind, address FROM subscribers").fetchall()
            else:  # a journal from before self-service subscribers: it holds none
                rows = []
    except sqlite3.Error as exc:
        raise StoreError(f"the journal at {path}: {exc}") from None
    return JournalSubscribers(
        [address for kind, address in rows if kind == "email"], [address for kind, address in rows if kind == "webhook"]
    )
