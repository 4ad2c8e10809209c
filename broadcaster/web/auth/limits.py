"""Rate limits on logins: failures counted per client address and per user name over a sliding window, so
neither one address trying many names nor many addresses trying one name gets far."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class FailureLimit:
    """At most `allowed` failures per key within `window` seconds; memory bounded by `max_keys` (the oldest
    keys are forgotten first). Per process: each instance limits what it is asked."""

    def __init__(
        self, *, allowed: int, window: float, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._allowed = allowed
        self._window = window
        self._max_keys = max_keys
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def blocked_for(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        recent = self._recent(key)
        if len(recent) < self._allowed:
            return 0.0
        return max(0.0, recent[0] + self._window - self._clock())

    def failed(self, key: str) -> None:
        recent = self._recent(key)
        recent.append(self._clock())
        self._failures[key] = recent
        while len(self._failures) > self._max_keys:
            del self._failures[next(iter(self._failures))]

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        recent = self._failures.pop(key, deque())  # re-inserted by failed(): the dict stays oldest-first
        horizon = self._clock() - self._window
        while recent and recent[0] <= horizon:
            recent.popleft()
        if recent:
            self._failures[key] = recent
        return recent
