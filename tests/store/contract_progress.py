"""What a store keeps of a delivery's progress: saved by its lease holder as it goes, handed to the next
attempt, and pruned of personal data once the delivery can no longer be attempted. Part of StoreContract."""

from __future__ import annotations

import time

import pytest

from broadcaster.domain.errors import LeaseLost
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store import Store
from tests.support.journal import claim, finish, planned, post


class ProgressContract:
    async def progress_of(self, journal: Store, delivery_id: str) -> dict[str, str]:
        """What the journal still holds of a delivery's progress (each backend reads it its own way)."""
        raise NotImplementedError

    async def test_saved_progress_reaches_the_next_attempt(self, journal: Store) -> None:
        """Entries saved in several calls add up (the last value of a key wins) and come with the next claim."""
        await post(journal, planned())
        (delivery_id,) = await claim(journal)
        await journal.save_progress("me", delivery_id, {"a@example.com": "", "b@example.com": "451 later"})
        await journal.save_progress("me", delivery_id, {"b@example.com": "550 no such user", "c@example.com": ""})
        await finish(journal, delivery_id, DeliveryState.PENDING, not_before=0.0)
        (again,) = (
            await journal.claim("scripted", ordering=Ordering.IN_ORDER, owner="me", limit=1, now=time.time(), lease=60)
        ).claimed
        assert again.progress == {"a@example.com": "", "b@example.com": "550 no such user", "c@example.com": ""}
        assert again.delivery.attempts == 2

    async def test_progress_is_saved_only_by_the_lease_holder(self, journal: Store) -> None:
        """A lane that lost its lease is told so, and nothing is saved: the delivery is another's now."""
        await post(journal, planned())
        (delivery_id,) = await claim(journal)
        with pytest.raises(LeaseLost):
            await journal.save_progress("someone else", delivery_id, {"a@example.com": ""})
        await journal.release("me", [delivery_id])
        with pytest.raises(LeaseLost):
            await journal.save_progress("me", delivery_id, {"b@example.com": ""})
        (again,) = (
            await journal.claim("scripted", ordering=Ordering.IN_ORDER, owner="me", limit=1, now=time.time(), lease=60)
        ).claimed
        assert again.progress == {}

    async def test_progress_of_a_finished_delivery_keeps_only_the_refusals(self, journal: Store) -> None:
        """Personal data no longer needed is pruned: a delivered delivery keeps its refusals, not the
        addresses that went through. A failed one keeps both until its time-to-live has passed (until then
        `retry --failed` may still resume it)."""
        accepted = await post(journal, planned("a", "b", ttl=3600))
        delivered, failed = await claim(journal)
        for delivery_id in (delivered, failed):
            await journal.save_progress("me", delivery_id, {"x@example.com": "", "y@example.com": "550 gone"})
        await finish(journal, delivered, DeliveryState.DELIVERED)
        await finish(journal, failed, DeliveryState.FAILED, error="gave up")
        assert await self.progress_of(journal, delivered) == {"y@example.com": "550 gone"}
        assert await self.progress_of(journal, failed) == {"x@example.com": "", "y@example.com": "550 gone"}
        await journal.expire_due(now=time.time())  # within its time-to-live: still requeueable, kept
        assert await self.progress_of(journal, failed) == {"x@example.com": "", "y@example.com": "550 gone"}
        past_ttl = max(d.expires_at for d in accepted.deliveries) + 1
        await journal.expire_due(now=past_ttl)
        assert await self.progress_of(journal, failed) == {"y@example.com": "550 gone"}

    async def test_progress_of_a_superseded_delivery_is_pruned(self, journal: Store) -> None:
        first = await post(journal, planned(ordering=Ordering.LATEST_ONLY))
        (claimed,) = (
            await journal.claim("latest", ordering=Ordering.LATEST_ONLY, owner="me", limit=1, now=time.time(), lease=60)
        ).claimed
        delivery_id = claimed.delivery.id
        await journal.save_progress("me", delivery_id, {"x@example.com": ""})
        await finish(journal, delivery_id, DeliveryState.PENDING, not_before=time.time() + 60)
        await post(journal, planned(ordering=Ordering.LATEST_ONLY), incident_id=first.incident.id, status="identified")
        (old,) = [d for d in await journal.deliveries(update_id=first.update.id)]
        assert old.state is DeliveryState.SUPERSEDED
        assert await self.progress_of(journal, delivery_id) == {}
