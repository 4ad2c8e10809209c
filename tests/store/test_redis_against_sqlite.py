"""The Redis journal against the SQLite journal: the same seeded random operations (accepts with and without
handoffs, claims with outcomes, releases, recoveries, expiries, requeues) on both, and after each one the
same answers and the same ledger."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from broadcaster.domain.errors import InputError, LeaseLost
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store import Handoff, Outcome, PlannedDelivery, Store
from broadcaster.store.base import accept_update, finish_and_claim
from broadcaster.store.redis import RedisStore
from broadcaster.store.sqlite import SqliteStore

CHANNELS = {"hook": Ordering.IN_ORDER, "mail": Ordering.LATEST_ONLY}
TARGETS = ("a", "b", "c")
OWNERS = ("o1", "o2")


class Differential:
    """One journal driven by a seeded random sequence of operations, each answer (and the whole ledger
    after it) written with deliveries as (update number, plan position): ids differ between journals."""

    def __init__(self, journal: Store, seed: int) -> None:
        self.journal, self.rng = journal, random.Random(seed)
        self.keys: dict[str, tuple[int, int]] = {}
        self.update_names: dict[str, str] = {}
        self.incidents: list[str] = []

    def key(self, deliveries: Any) -> list[tuple[int, int]]:
        return sorted(self.keys[d.id] for d in deliveries)

    async def step(self, number: int, now: float) -> object:
        operations: dict[str, Callable[[int, float], Awaitable[object]]] = {
            "accept": self.accept,
            "claim": self.claim,
            "finish": self.finish,
            "release": lambda n, t: self.journal.release(self.rng.choice(OWNERS), None, interrupted="stop"),
            "recover": lambda n, t: self.recover(t),
            "expire": lambda n, t: self.expire(t),
            "requeue": lambda n, t: self.journal.requeue_failed(now=t, channel=self.rng.choice([None, "hook"])),
        }
        name = self.rng.choice(["accept"] * 3 + ["claim"] * 4 + ["finish"] * 3 + list(operations)[3:])
        return name, await operations[name](number, now)

    async def accept(self, number: int, now: float) -> object:
        rng = self.rng
        channels = rng.sample(list(CHANNELS), rng.randint(1, 2))
        plan = [
            PlannedDelivery(
                channel=c, target=rng.choice(TARGETS), ordering=CHANNELS[c], max_attempts=2, ttl=rng.choice([5, 500])
            )
            for c in channels * 2
        ]
        handoff = (
            Handoff(owner=rng.choice(OWNERS), lease_until=now + 30, room={"hook": rng.randint(0, 2)})
            if rng.random() < 0.4
            else None
        )
        fields: dict[str, Any] = {"status": "investigating", "message": f"m{number}", "title": f"t{number}"}
        if self.incidents and rng.random() < 0.6:
            status = rng.choice(["identified", "resolved"])
            fields = {"incident_id": rng.choice(self.incidents), "status": status, "message": f"m{number}"}
        try:
            accepted = await accept_update(
                self.journal,
                UpdateDraft.model_validate(fields),
                plan,
                now=datetime.fromtimestamp(now, UTC),
                handoff=handoff,
            )
        except InputError as refused:  # its message names the incident, whose id differs between journals
            return sorted(refused.fields)
        self.incidents += [] if "incident_id" in fields else [accepted.incident.id]
        self.update_names[accepted.update.id] = f"u{number}"
        self.keys.update({d.id: (number, position) for position, d in enumerate(accepted.deliveries)})
        handed = [(self.keys[c.delivery.id], c.thread_parent, len(c.history)) for c in accepted.handed_off]
        return [d.state for d in accepted.deliveries], self.key(accepted.superseded), handed

    async def claim(self, number: int, now: float) -> object:
        channel = self.rng.choice(list(CHANNELS))
        result = await finish_and_claim(
            self.journal,
            (),
            channel,
            ordering=CHANNELS[channel],
            owner=self.rng.choice(OWNERS),
            limit=self.rng.randint(0, 3),
            now=now,
            lease=self.rng.choice([1, 30]),
            skip_targets=self.rng.sample(TARGETS, self.rng.randint(0, 1)),
            sweep=self.rng.random() < 0.5,
        )
        claimed = [
            (self.keys[c.delivery.id], c.delivery.attempts, c.thread_parent, dict(c.progress)) for c in result.claimed
        ]
        return claimed, self.key(result.expired), self.key(result.superseded)

    async def finish(self, number: int, now: float) -> object:
        owner = self.rng.choice(OWNERS)
        leased = sorted(
            (d for d in await self.journal.deliveries(open_only=True) if d.state == "in_flight"),
            key=lambda d: self.keys[d.id],
        )
        outcomes, saved = [], []
        for d in leased:
            state = self.rng.choice([DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.PENDING])
            try:
                await self.journal.save_progress(owner, d.id, {f"k{number}": "", "refused": "550"})
                saved.append(self.keys[d.id])
            except LeaseLost:
                pass
            retry = now + self.rng.choice([0, 20]) if state is DeliveryState.PENDING else None
            external = f"x{number}" if state is DeliveryState.DELIVERED else None
            outcomes.append(
                Outcome(
                    delivery_id=d.id,
                    state=state,
                    attempt=d.attempts,
                    started_at=now,
                    finished_at=now,
                    not_before=retry,
                    error="e",
                    external_id=external,
                )
            )
        return await self.journal.finish(owner, outcomes), saved

    async def recover(self, now: float) -> object:
        dead = self.rng.choice(OWNERS)
        return self.key(await self.journal.recover(now=now, owner_is_dead=lambda owner: owner == dead))

    async def expire(self, now: float) -> object:
        return self.key(await self.journal.expire_due(now=now))

    async def ledger(self) -> object:
        rows = []
        for d in await self.journal.deliveries():
            error = d.last_error
            for update_id, name in self.update_names.items():
                error = error.replace(update_id, name)
            logged = [(a.number, a.outcome, a.error) for a in await self.journal.attempts(d.id)]
            rows.append(
                (self.keys[d.id], d.state, d.attempts, d.not_before, d.finished_at, error, d.external_id, logged)
            )
        return sorted(rows), await self.journal.backlog()


@pytest.mark.parametrize("seed", range(8))
async def test_it_answers_as_the_sqlite_journal_does(seed: int, redis_url: str, tmp_path: Path) -> None:
    """The same random operations (accepts with handoffs and supersession, claims, outcomes, progress,
    releases, recovery, expiry, requeues) get the same answers, and leave the same ledger, in both."""
    sqlite = SqliteStore(tmp_path / "j.db", url="sqlite:///j.db")
    redis_journal = RedisStore(redis_url)
    await sqlite.open()
    await redis_journal.open()
    try:
        expected, actual = Differential(sqlite, seed), Differential(redis_journal, seed)
        now = 1_800_000_000.0
        for number in range(40):
            now += random.Random(seed * 1000 + number).choice([0.5, 3, 20, 200])
            assert await actual.step(number, now) == await expected.step(number, now), f"step {number}"
            assert await actual.ledger() == await expected.ledger(), f"after step {number}"
    finally:
        await sqlite.close()
        await redis_journal.close()
