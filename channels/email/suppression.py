"""The suppression list: addresses that are never mailed again, surviving restarts.

A plain text file (default <service.data_dir>/email-suppressed.txt), one entry per line: the address
first, then anything after whitespace as a note. Blank lines and lines starting with # are ignored, and
addresses compare case-insensitively. The channel appends "address<TAB>time<TAB>reason" for every hard
bounce (5xx to RCPT) and fsyncs it; operators may add addresses that unsubscribed the same way, with any
editor, at any time (the file is read again whenever it changes). Kept behind this small class so it can
move into the journal later without the channel noticing."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from broadcaster.domain.text import printable
from config.email import is_address

log = logging.getLogger("broadcaster.email")


class SuppressionList:
    """Read with `load()`, extend with `add()`; both do their file I/O in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int] | None = None
        self._addresses: frozenset[str] = frozenset()
        self._lock = asyncio.Lock()

    async def load(self) -> frozenset[str]:
        """Every suppressed address, lower-cased. A missing file is an empty list."""
        async with self._lock:
            return await asyncio.to_thread(self._load)

    async def add(self, reasons: Mapping[str, str]) -> None:
        """Append `address -> reason` entries durably (written and fsynced before this returns)."""
        if not reasons:
            return
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = "".join(f"{address}\t{stamp}\t{_one_line(reason)}\n" for address, reason in reasons.items())
        async with self._lock:
            await asyncio.to_thread(self._append, text)
            self._addresses |= {address.lower() for address in reasons}

    def _load(self) -> frozenset[str]:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._signature, self._addresses = None, frozenset()
            return self._addresses
        signature = (stat.st_mtime_ns, stat.st_size)
        if signature != self._signature:
            with self.path.open(encoding="utf-8", errors="replace") as lines:
                self._addresses = frozenset(_parse(lines, self.path))
            self._signature = signature
        return self._addresses

    def _append(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: one write per batch lands whole at the end, even beside an operator's `echo >>`.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def _parse(lines: Iterable[str], path: Path) -> set[str]:
    addresses: set[str] = set()
    skipped = 0
    for line in lines:
        fields = line.split(None, 1)
        if not fields or fields[0].startswith("#"):
            continue
        if is_address(fields[0]):
            addresses.add(fields[0].lower())
        else:
            skipped += 1
    if skipped:
        log.warning("suppression file %s: %d lines without an address at the start were ignored", path, skipped)
    return addresses


def _one_line(text: str) -> str:
    """A reason as one line of the file, with any terminal escape made visible: operators read this file
    with cat and less, and the reason quotes the receiving server."""
    return printable(" ".join(text.split())[:200])
