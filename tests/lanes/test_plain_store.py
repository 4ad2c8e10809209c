"""A backend that keeps only the plain store contract (no BatchedClaims, no HandsOff) still runs a lane: its
outcomes are recorded with `finish`, then it claims, and an update handed off is simply left to the lanes
to claim. The backend here is the SQLite journal seen through a wrapper that offers the contract and nothing
more, so only the capabilities differ."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store import Handoff, Store
from broadcaster.store.base import BatchedClaims, HandsOff
from broadcaster.store.sqlite import SqliteStore
from tests.lanes.support import running, settled, states
from tests.support.channels import Script, deliver
from tests.support.journal import planned, post


class PlainStore(Store):
    """Every call of the Store contract goes to `inner`; nothing else is offered. Counts the calls made."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.url = inner.url
        self.calls: list[str] = []


def _delegate(name: str) -> Callable[..., Awaitable[Any]]:
    async def call(self: PlainStore, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(name)
        return await getattr(self.inner, name)(*args, **kwargs)

    call.__name__ = name
    return call


for _name in Store.__abstractmethods__:
    setattr(PlainStore, _name, _delegate(_name))
PlainStore.__abstractmethods__ = frozenset()


async def test_a_lane_runs_on_a_store_without_batched_claims_or_handoffs(tmp_path: Path) -> None:
    inner = SqliteStore(tmp_path / "j.db", url="sqlite:///j.db")
    store = PlainStore(inner)  # type: ignore[abstract]  # its methods are set on the class above
    assert not isinstance(store, BatchedClaims | HandsOff)
    await store.open()
    targets = [f"t{n}" for n in range(20)]
    try:
        async with running(store, Script(deliver, targets=targets)):
            handoff = Handoff(owner="lane", lease_until=time.time() + 60, room={"scripted": 10})
            accepted = await post(store, planned(*targets), handoff=handoff)
            assert accepted.handed_off == ()  # nothing leased at acceptance: the lane claims it all
            await settled(store, accepted.update.id)
        assert set(await states(store, accepted.update.id)) == {DeliveryState.DELIVERED}
        assert "finish" in store.calls and "claim" in store.calls  # outcomes recorded apart from claims
    finally:
        await store.close()
