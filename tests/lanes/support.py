"""What the lane tests share: a fast policy, a running lane over a scripted channel, and small waits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.lanes import Lane, LaneEvent
from broadcaster.store import Store
from channels.base import Ordering
from config.settings import LanePolicy
from tests.support.channels import SCRIPTS, HangChannel, LatestChannel, Script, ScriptedChannel
from tests.support.helpers import eventually

FAST = LanePolicy(
    max_attempts=4,
    base_delay=0.02,
    max_delay=0.1,
    ttl=60,
    timeout=5,
    concurrency=4,
    breaker_threshold=100,
    breaker_cooldown=1,
)


@asynccontextmanager
async def running(
    store: Store,
    script: Script,
    *,
    policy: LanePolicy = FAST,
    name: str = "scripted",
    paused: bool = False,
    drain: float = 0.2,
) -> AsyncIterator[tuple[Lane, list[LaneEvent]]]:
    """A started lane over `script`, stopped on the way out (giving attempts in hand `drain` seconds)."""
    SCRIPTS[name] = script
    channel = {"scripted": ScriptedChannel, "latest": LatestChannel, "hang": HangChannel}[name](script)
    ordering = Ordering.LATEST_ONLY if name == "latest" else Ordering.IN_ORDER
    if paused:
        await store.set_paused(name, "", paused=True, reason="test", now=time.time())
    events: list[LaneEvent] = []
    lane = Lane(
        name=name,
        channel=channel,
        ordering=ordering,
        policy=policy,
        store=store,
        owner="test:1:lane",
        observe=events.append,
        poll_interval=0.05,
    )
    lane.start()
    try:
        yield lane, events
    finally:
        await lane.stop(drain=drain)


async def states(store: Store, update_id: str) -> list[DeliveryState]:
    return [d.state for d in await store.deliveries(update_id=update_id)]


async def settled(store: Store, update_id: str, *, within: float = 10.0) -> None:
    async def done() -> bool:
        return all(state.is_final for state in await states(store, update_id))

    await eventually(done, within=within)


async def true_if(value: Any) -> bool:
    return bool(value)
