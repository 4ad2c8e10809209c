"""The subscribers file: who gets status email, and for which components (its two forms are read by
channels.subscriber_lists). The file is read in a thread (it may sit on a slow mount) and read again only
when its modification time or size changes."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from channels.subscriber_lists import SubscriberList, SubscribersUnavailable, parse_subscribers

log = logging.getLogger("broadcaster.email")


class SubscriberFile:
    """The subscribers file, parsed again only when it changed on disk."""

    def __init__(self, path: Path, *, limit: int) -> None:
        self.path = path
        self._limit = limit
        self._signature: tuple[int, int] | None = None
        self._cached = SubscriberList((), ())

    async def load(self) -> SubscriberList:
        """The current list. Raises SubscribersUnavailable when the file cannot be read."""
        try:
            stat = await asyncio.to_thread(os.stat, self.path)
        except OSError as exc:
            raise SubscribersUnavailable(f"cannot read subscribers file {self.path}: {exc.strerror}") from None
        signature = (stat.st_mtime_ns, stat.st_size)
        if signature != self._signature:
            self._cached = await asyncio.to_thread(self._read)
            self._signature = signature
            if self._cached.problems:
                shown = "; ".join(self._cached.problems[:10])
                more = len(self._cached.problems) - 10
                log.warning(
                    "subscribers file %s: %d bad lines skipped: %s%s",
                    self.path,
                    len(self._cached.problems),
                    shown,
                    f" (and {more} more)" if more > 0 else "",
                )
        return self._cached

    def _read(self) -> SubscriberList:
        try:
            with self.path.open(encoding="utf-8-sig", errors="replace", newline="") as lines:
                return parse_subscribers(lines, limit=self._limit)
        except OSError as exc:
            raise SubscribersUnavailable(f"cannot read subscribers file {self.path}: {exc.strerror}") from None
