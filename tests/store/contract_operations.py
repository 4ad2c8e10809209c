"""What a store answers about the work in hand, for /readyz, /metrics and the overdue warning: how much
waits in each lane and since when, and which open incidents owe their readers an update; and how pauses
hold it. Part of StoreContract."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store import Store
from tests.support.journal import claim, finish, planned, post


class OperationsContract:
    async def test_the_backlog_counts_open_deliveries_per_channel_since_the_oldest(self, journal: Store) -> None:
        """Pending and in-flight deliveries count; finished ones do not; a channel with nothing open is absent."""
        before = time.time()
        await post(journal, planned("a", "b", "c") + planned("x", ordering=Ordering.LATEST_ONLY))
        await post(journal, planned("done", name="other"))
        after = time.time()
        first, _in_flight = await claim(journal, limit=2)
        await finish(journal, first, DeliveryState.DELIVERED)
        (done,) = (
            await journal.claim("other", ordering=Ordering.IN_ORDER, owner="me", limit=1, now=after + 1, lease=60)
        ).claimed
        await finish(journal, done.delivery.id, DeliveryState.FAILED, error="refused")

        backlog = await journal.backlog()

        assert {channel: count for channel, (count, _) in backlog.items()} == {"scripted": 2, "latest": 1}
        assert all(before - 1 <= oldest <= after + 1 for _, oldest in backlog.values())

    async def test_overdue_lists_open_incidents_past_their_next_update_the_longest_overdue_first(
        self, journal: Store
    ) -> None:
        now = datetime.now(UTC)
        soon = await post(journal, planned(), title="soon", next_update_at=now + timedelta(minutes=10))
        sooner = await post(journal, planned(), title="sooner", next_update_at=now + timedelta(minutes=5))
        await post(journal, planned(), title="later", next_update_at=now + timedelta(hours=2))
        await post(journal, planned(), title="no promise")
        resolved = await post(journal, planned(), title="resolved", next_update_at=now + timedelta(minutes=1))
        await post(journal, planned(), incident_id=resolved.incident.id, status="resolved", message="Fixed.")

        in_an_hour = now + timedelta(hours=1)
        assert [i.id for i in await journal.overdue(now=in_an_hour, limit=10)] == [sooner.incident.id, soon.incident.id]
        assert [i.id for i in await journal.overdue(now=in_an_hour, limit=1)] == [sooner.incident.id]
        assert await journal.overdue(now=now, limit=10) == []

    async def test_a_pause_holds_claims_at_once(self, journal: Store) -> None:
        """Claims read the journal's pauses themselves: a lane whose own view of them is a poll behind (the pause
        came from another process, or a moment ago) leases nothing paused all the same."""
        accepted = await post(journal, planned("a", "b"))
        await journal.set_paused("scripted", "a", paused=True, reason="test", now=time.time())
        assert await claim(journal) == [accepted.deliveries[1].id]
        await journal.set_paused("scripted", "", paused=True, reason="test", now=time.time())
        await journal.set_paused("scripted", "a", paused=False, reason="", now=time.time())
        assert await claim(journal) == []
        await journal.set_paused("scripted", "", paused=False, reason="", now=time.time())
        assert await claim(journal) == [accepted.deliveries[0].id]
