"""Retry policy and circuit breakers: the one place that decides when a failed delivery is tried again.

All times are in seconds."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from broadcaster.domain.vocabulary import DeliveryState
from config.settings import LanePolicy


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2 ** (attempt - 1))].

    Full jitter spreads the retries of many deliveries that failed together (a relay restart) instead of
    sending them back in synchronized waves."""
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return rng.uniform(0.0, ceiling)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    state: DeliveryState
    """PENDING (try again at not_before), FAILED (out of attempts) or EXPIRED (next try past the TTL)."""
    not_before: float | None
    error: str


def after_transient_failure(
    policy: LanePolicy,
    *,
    attempts: int,
    now: float,
    expires_at: float,
    error: str,
    retry_after: float | None,
    rng: random.Random,
) -> RetryDecision:
    """What follows a transient failure of attempt number `attempts`. A delay the far end asked for
    (Retry-After, a rate-limit reset) replaces the backoff."""
    if attempts >= policy.max_attempts:
        tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
        return RetryDecision(DeliveryState.FAILED, None, f"gave up after {tries}: {error}")
    delay = (
        retry_after
        if retry_after is not None
        else backoff(attempts, base=policy.base_delay, cap=policy.max_delay, rng=rng)
    )
    not_before = now + max(0.0, delay)
    if not_before >= expires_at:
        return RetryDecision(DeliveryState.EXPIRED, None, f"next attempt would come after its time-to-live: {error}")
    return RetryDecision(DeliveryState.PENDING, not_before, error)


@dataclass(slots=True)
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    cooldown: float = 0.0
    probing: bool = False


@dataclass(slots=True)
class Breakers:
    """One circuit breaker per target of a lane.

    After `threshold` consecutive transient failures a target's breaker opens: its deliveries stay
    queued (spending no attempts) for `cooldown` seconds. Then one probe delivery goes through; success
    closes the breaker, failure reopens it with the cooldown doubled (up to 10 times the base)."""

    threshold: int
    cooldown: float
    _targets: dict[str, _Breaker] = field(default_factory=dict)

    def blocked(self, now: float) -> set[str]:
        """Targets not to claim for now: cooling down, or half-open with their probe in flight."""
        blocked = set()
        for target, breaker in self._targets.items():
            if breaker.opened_at is None:
                continue
            if breaker.probing or now < breaker.opened_at + breaker.cooldown:
                blocked.add(target)
        return blocked

    def started(self, target: str) -> None:
        breaker = self._targets.get(target)
        if breaker is not None and breaker.opened_at is not None:
            breaker.probing = True

    def succeeded(self, target: str) -> None:
        """The target answered (a delivery, or a refusal that proves it is up): close its breaker."""
        self._targets.pop(target, None)

    def failed(self, target: str, now: float) -> None:
        breaker = self._targets.setdefault(target, _Breaker())
        breaker.failures += 1
        if breaker.opened_at is not None:  # the probe failed
            breaker.cooldown = min(breaker.cooldown * 2, self.cooldown * 10)
            breaker.opened_at, breaker.probing = now, False
        elif breaker.failures >= self.threshold:
            breaker.opened_at, breaker.cooldown = now, self.cooldown

    def open_targets(self) -> dict[str, float]:
        """Open breakers and when each may next be probed."""
        return {
            target: breaker.opened_at + breaker.cooldown
            for target, breaker in self._targets.items()
            if breaker.opened_at is not None
        }
