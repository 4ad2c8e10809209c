"""Backoff with full jitter, the retry decision, and per-target circuit breakers."""

from __future__ import annotations

import random

from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.retry import Breakers, after_transient_failure, backoff
from config.settings import LanePolicy


def test_backoff_stays_within_the_exponential_ceiling_and_the_cap() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        samples = [backoff(attempt, base=0.5, cap=30.0, rng=rng) for _ in range(500)]
        assert all(0.0 <= s <= ceiling for s in samples)
        # Full jitter: spread over the whole range, not bunched at the top.
        assert min(samples) < ceiling * 0.1 and max(samples) > ceiling * 0.9


def test_backoff_grows_with_attempts_on_average() -> None:
    rng = random.Random(1)
    means = [sum(backoff(a, base=1.0, cap=1000.0, rng=rng) for _ in range(2000)) / 2000 for a in (1, 3, 5)]
    assert means[0] < means[1] < means[2]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert 0.0 <= backoff(10_000, base=1.0, cap=60.0, rng=random.Random(0)) <= 60.0


def decide(
    attempts: int, *, retry_after: float | None = None, expires_at: float = 1e9
) -> tuple[DeliveryState, float | None]:
    policy = LanePolicy(max_attempts=3, base_delay=1.0, max_delay=10.0)
    decision = after_transient_failure(
        policy,
        attempts=attempts,
        now=100.0,
        expires_at=expires_at,
        error="503",
        retry_after=retry_after,
        rng=random.Random(3),
    )
    return decision.state, decision.not_before


def test_retry_is_scheduled_within_the_backoff() -> None:
    state, not_before = decide(2)
    assert state is DeliveryState.PENDING
    assert not_before is not None and 100.0 <= not_before <= 102.0


def test_out_of_attempts_fails() -> None:
    assert decide(3) == (DeliveryState.FAILED, None)


def test_a_requested_delay_replaces_the_backoff() -> None:
    assert decide(1, retry_after=42.0) == (DeliveryState.PENDING, 142.0)


def test_a_retry_due_after_the_ttl_expires_now() -> None:
    """Better recorded as expired than sent stale: an X rate-limit reset past the TTL is the typical case."""
    assert decide(1, retry_after=600.0, expires_at=300.0) == (DeliveryState.EXPIRED, None)


def test_breaker_opens_after_threshold_and_lets_one_probe_through() -> None:
    breakers = Breakers(threshold=3, cooldown=10.0)
    for now in (1.0, 2.0):
        breakers.failed("a", now)
    assert breakers.blocked(2.0) == set()
    breakers.failed("a", 3.0)
    assert breakers.blocked(3.0) == {"a"}
    assert breakers.blocked(12.9) == {"a"}
    assert breakers.blocked(13.1) == set()  # half-open: one probe may go
    breakers.started("a")
    assert breakers.blocked(13.2) == {"a"}  # and only one
    breakers.failed("a", 14.0)  # the probe failed: open again, for twice as long
    assert breakers.blocked(14.0 + 19.9) == {"a"}
    assert breakers.blocked(14.0 + 20.1) == set()
    breakers.started("a")
    breakers.succeeded("a")
    assert breakers.blocked(100.0) == set() and breakers.open_targets() == {}


def test_breakers_are_per_target() -> None:
    breakers = Breakers(threshold=1, cooldown=5.0)
    breakers.failed("dead", 0.0)
    assert breakers.blocked(1.0) == {"dead"}
    breakers.failed("alive", 0.0)
    breakers.succeeded("alive")
    assert breakers.blocked(1.0) == {"dead"}
