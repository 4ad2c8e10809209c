"""The store contract's subscriber records: the same behaviour from every backend."""

from __future__ import annotations

from broadcaster.domain.subscriptions import Subscriber
from broadcaster.store import Store


class SubscriberContract:
    async def test_subscribers_are_kept_per_kind_and_address(self, journal: Store) -> None:
        ann = Subscriber(kind="email", address="ann@example.com", components=("API",), since=1.0)
        hook = Subscriber(kind="webhook", address="https://hooks.example.com/x", since=2.0, source="operator")
        assert await journal.save_subscribers([ann, hook]) == 2
        changed = Subscriber(kind="email", address="ann@example.com", components=("API", "Website"), since=3.0)
        assert await journal.save_subscribers([changed]) == 0, "the same kind and address is replaced, not added"
        bo = Subscriber(kind="email", address="bo@example.com", since=4.0)
        assert await journal.save_subscribers([bo, changed]) == 1
        assert await journal.save_subscribers([]) == 0
        assert await journal.subscribers("email") == [changed, bo]
        assert await journal.subscribers("webhook") == [hook]
        assert await journal.subscriber("email", "ann@example.com") == changed
        assert await journal.subscriber("webhook", "ann@example.com") is None
        assert await journal.remove_subscriber("email", "ann@example.com")
        assert not await journal.remove_subscriber("email", "ann@example.com")
        assert await journal.subscribers("email") == [bo]

    async def test_a_suppression_is_lifted_when_the_address_subscribes_again(self, journal: Store) -> None:
        await journal.suppress({"ann@example.com": "unsubscribed"}, source="unsubscribe", now=1.0)
        assert await journal.is_suppressed("ANN@example.com") and not await journal.is_suppressed("bo@example.com")
        assert await journal.unsuppress("Ann@Example.com")
        assert not await journal.unsuppress("ann@example.com")
        assert await journal.suppressed() == frozenset()
        assert not await journal.is_suppressed("ann@example.com")
