"""A lane's view of the pauses the journal holds for its channel: the whole channel, or single targets."""

from __future__ import annotations

import logging
from collections.abc import Callable

from broadcaster.domain.errors import StoreError
from broadcaster.store.base import Store

log = logging.getLogger("broadcaster.lane")


class Pauses:
    """Read from the journal at most every poll interval (an operator's `pause` in another process is seen
    within it); a target the lane finds gone (410) is paused here and in the journal at once."""

    def __init__(self, channel: str, store: Store, clock: Callable[[], float]) -> None:
        self._channel = channel
        self._store = store
        self._clock = clock
        self.channel_paused = False
        self.targets: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    @property
    def any(self) -> bool:
        return self.channel_paused or bool(self.targets)

    def holds(self, target: str) -> bool:
        return self.channel_paused or target in self.targets

    def expire(self) -> None:
        """Read the pauses again at the next look, whenever the last one was."""
        self._read_at = float("-inf")

    def stale(self, now: float, every: float) -> bool:
        return now - self._read_at >= every

    async def refresh(self, now: float) -> None:
        controls = [c for c in await self._store.controls() if c.channel == self._channel and c.paused]
        self.channel_paused = any(c.target == "" for c in controls)
        self.targets = frozenset(c.target for c in controls if c.target)
        self._read_at = now

    async def pause_target(self, target: str, reason: str) -> None:
        self.targets |= {target}
        log.warning("%s lane: target %s is gone (%s); paused until resumed", self._channel, target, reason)
        try:
            await self._store.set_paused(self._channel, target, paused=True, reason=reason, now=self._clock())
        except StoreError as exc:
            log.error("%s lane: cannot record the pause of %s: %s", self._channel, target, exc)
