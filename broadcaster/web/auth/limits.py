"""Rate limits on logins, over a sliding window, per client and per user name. A client is an address; an
IPv6 address counts as its /64 (broadcaster.web.auth.clients.limit_key), since one host is usually given a
whole /64 and could otherwise take a fresh address for every guess.

A strict cap per user name would let anyone who knows a commander's name keep them locked out, from any
address, with a few wrong passwords every window: in the middle of an incident. So the limits are:

- per (user, client): LOGIN_FAILURES_PER_USER_AND_CLIENT, then that client waits before trying that user
  again; a guesser at one address gets no further, and the commander's own browser is not held up by them.
- per client: LOGIN_FAILURES_PER_CLIENT across every name: one address trying many names.
- per user: once a name has had LOGIN_FAILURES_PER_USER failures from anywhere (many addresses guessing it),
  every client that has itself failed for that name in the window is refused; a client that has not may
  still try. Spread over many addresses, a guesser then gets one guess per address per window (each address
  bounded by the per-client limit too), while the commander, whose browser has not failed, still signs in.
- per user, from anywhere: after LOGIN_FAILURES_PER_USER_CAP failures in the window, only a browser that has
  signed in as that user before (a "known device": a signed cookie the gate sets at each sign-in) may try.
  This bounds a guesser with many addresses (a botnet, or many /64s) to that many guesses per window, at the
  price of a commander on a new browser waiting for the window to pass (the CLI needs no sign-in).

A known device is exempt from both per-user limits, never from its own per-client ones. Every limit is per
process: each instance limits what it is asked."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar

LOGIN_FAILURES_PER_USER_AND_CLIENT: Final = 5
LOGIN_FAILURES_PER_CLIENT: Final = 20
LOGIN_FAILURES_PER_USER: Final = 10
LOGIN_FAILURES_PER_USER_CAP: Final = 100
LOGIN_WINDOW: Final = 15 * 60.0

Key = TypeVar("Key", bound=Hashable)


class FailureLimit(Generic[Key]):
    """At most `allowed` failures per key within `window` seconds; memory bounded by `max_keys` (the oldest
    keys are forgotten first)."""

    def __init__(
        self, *, allowed: int, window: float, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._allowed = allowed
        self._window = window
        self._max_keys = max_keys
        self._clock = clock
        self._failures: dict[Key, deque[float]] = {}

    def blocked_for(self, key: Key) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        recent = self._recent(key)
        if len(recent) < self._allowed:
            return 0.0
        return max(0.0, recent[0] + self._window - self._clock())

    def clear_in(self, key: Key) -> float:
        """Seconds until `key` has no failure left in the window; 0 when it has none now."""
        recent = self._recent(key)
        return max(0.0, recent[-1] + self._window - self._clock()) if recent else 0.0

    def failed(self, key: Key) -> None:
        recent = self._recent(key)
        recent.append(self._clock())
        self._failures[key] = recent
        while len(self._failures) > self._max_keys:
            del self._failures[next(iter(self._failures))]

    def undo_one(self, key: Key) -> None:
        """Take back the latest failure of `key` (it was counted ahead of a check that then passed)."""
        recent = self._recent(key)
        if recent:
            recent.pop()

    def forget(self, key: Key) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: Key) -> deque[float]:
        recent = self._failures.pop(key, deque())  # re-inserted by failed(): the dict stays oldest-first
        horizon = self._clock() - self._window
        while recent and recent[0] <= horizon:
            recent.popleft()
        if recent:
            self._failures[key] = recent
        return recent


class LoginLimits:
    """The limits of the module's docstring, applied together."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._per_user_and_client = FailureLimit[tuple[str, str]](
            allowed=LOGIN_FAILURES_PER_USER_AND_CLIENT, window=LOGIN_WINDOW, clock=clock
        )
        self._per_client = FailureLimit[str](allowed=LOGIN_FAILURES_PER_CLIENT, window=LOGIN_WINDOW, clock=clock)
        self._per_user = FailureLimit[str](allowed=LOGIN_FAILURES_PER_USER, window=LOGIN_WINDOW, clock=clock)
        self._per_user_cap = FailureLimit[str](allowed=LOGIN_FAILURES_PER_USER_CAP, window=LOGIN_WINDOW, clock=clock)

    def blocked_for(self, user: str, client: str, *, known_device: bool = False) -> float:
        """Seconds until `client` may try to sign in as `user`; 0 when it may now. `known_device`: the browser
        has signed in as `user` before."""
        waits = [self._per_user_and_client.blocked_for((user, client)), self._per_client.blocked_for(client)]
        if not known_device:
            waits.append(self._per_user_cap.blocked_for(user))
            own_failures_clear_in = self._per_user_and_client.clear_in((user, client))
            if own_failures_clear_in > 0:  # this client failed for this user lately: the per-user limit applies
                waits.append(min(self._per_user.blocked_for(user), own_failures_clear_in))
        return max(waits)

    def failed(self, user: str, client: str) -> None:
        self._per_user_and_client.failed((user, client))
        self._per_client.failed(client)
        self._per_user.failed(user)
        self._per_user_cap.failed(user)

    def succeeded(self, user: str, client: str) -> None:
        """Undo the failure counted ahead of a check that passed. The client's own earlier failures for this
        user (typos) are forgiven; its failures against the client limit are not, or an attacker holding one
        account could reset that limit by signing in to it between guesses at others."""
        self._per_user_and_client.forget((user, client))
        self._per_client.undo_one(client)
        self._per_user.undo_one(user)
        self._per_user_cap.undo_one(user)
