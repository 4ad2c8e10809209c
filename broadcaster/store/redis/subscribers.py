"""Subscribers in Redis: one hash per kind, address -> the rest of the record as JSON (the same encoding
as SQLite's). Each change is one command, so none needs a script to be atomic.

    P subscribers:<kind>           hash address -> JSON {components, since, source}"""

from __future__ import annotations

from collections.abc import Sequence

from redis.typing import EncodableT, FieldT

from broadcaster.domain.subscriptions import Subscriber, SubscriberKind, from_state, state_of
from broadcaster.store.redis.connection import Failures, Link, text


class SubscriberRecords:
    """The subscriber part of RedisStore, which provides `link` and `_failures`."""

    _failures: Failures

    @property
    def link(self) -> Link:
        raise NotImplementedError

    def _subscribers_key(self, kind: SubscriberKind) -> str:
        return f"{self.link.prefix}subscribers:{kind}"

    async def save_subscribers(self, subscribers: Sequence[Subscriber]) -> int:
        by_kind: dict[SubscriberKind, dict[FieldT, EncodableT]] = {}
        for subscriber in subscribers:
            by_kind.setdefault(subscriber.kind, {})[subscriber.address] = state_of(subscriber)
        with self._failures.guard("write", write=True):
            async with self.link.client.pipeline(transaction=True) as pipe:
                for kind, fields in by_kind.items():
                    pipe.hset(self._subscribers_key(kind), mapping=fields)
                added = await pipe.execute()
        return sum(int(count) for count in added)

    async def remove_subscriber(self, kind: SubscriberKind, address: str) -> bool:
        with self._failures.guard("write", write=True):
            return bool(await self.link.client.hdel(self._subscribers_key(kind), address))

    async def subscriber(self, kind: SubscriberKind, address: str) -> Subscriber | None:
        with self._failures.guard("read", write=False):
            state = await self.link.client.hget(self._subscribers_key(kind), address)
        return None if state is None else from_state(kind, address, text(state))

    async def subscribers(self, kind: SubscriberKind) -> list[Subscriber]:
        with self._failures.guard("read", write=False):
            entries = await self.link.client.hgetall(self._subscribers_key(kind))
        return sorted(
            (from_state(kind, text(address), text(state)) for address, state in entries.items()),
            key=lambda s: s.address,
        )
