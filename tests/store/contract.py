"""What every journal backend must do, written once: a backend's test module subclasses StoreContract and
provides a `journal` fixture (an open store of that backend)."""

from __future__ import annotations

import asyncio
import time

import pytest

from broadcaster.domain.errors import InputError, NotFoundError
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store import Handoff, Store
from broadcaster.store.base import finish_and_claim
from tests.store.contract_operations import OperationsContract
from tests.store.contract_progress import ProgressContract
from tests.store.contract_requests import RequestContract
from tests.store.contract_sessions import SessionContract
from tests.store.contract_site import SiteContract
from tests.store.contract_subscribers import SubscriberContract
from tests.support.journal import claim, finish, first_attempt, planned, post


class StoreContract(
    RequestContract, ProgressContract, OperationsContract, SubscriberContract, SiteContract, SessionContract
):
    """What every journal backend must do. Subclasses provide the `journal` fixture (and `progress_of`,
    `another`)."""

    async def test_accepting_plans_one_pending_delivery_per_target(self, journal: Store) -> None:
        accepted = await post(journal, planned("a", "b"))
        assert [(d.target, d.state) for d in accepted.deliveries] == [
            ("a", DeliveryState.PENDING),
            ("b", DeliveryState.PENDING),
        ]
        history = await journal.history(accepted.incident.id)
        assert [u.id for u in history.updates] == [accepted.update.id]

    async def test_a_refused_update_journals_nothing(self, journal: Store) -> None:
        first = await post(journal, planned(), status="resolved")
        with pytest.raises(InputError, match="reopen"):
            await post(journal, planned(), incident_id=first.incident.id)
        assert len((await journal.history(first.incident.id)).updates) == 1
        assert len(await journal.deliveries(incident_id=first.incident.id)) == 1

    async def test_unknown_incident_is_not_found(self, journal: Store) -> None:
        with pytest.raises(NotFoundError, match="no incident with id"):
            await post(journal, planned(), incident_id="0123456789ab")

    async def test_suppressed_addresses_are_kept_once_and_lower_cased(self, journal: Store) -> None:
        added = await journal.suppress({"Ann@Example.com": "unsubscribed"}, source="unsubscribe", now=1.0)
        again = await journal.suppress(
            {"ann@example.com": "again", "bo@example.com": "unsubscribed"}, source="unsubscribe", now=2.0
        )
        assert (added, again) == (1, 1)
        assert await journal.suppressed() == {"ann@example.com", "bo@example.com"}

    async def test_claims_are_leases_one_owner_at_a_time(self, journal: Store) -> None:
        await post(journal, planned("a", "b"))
        mine = await claim(journal, "me")
        assert len(mine) == 2
        assert await claim(journal, "someone else") == []
        assert await finish(journal, mine[0], DeliveryState.DELIVERED, owner="someone else") == 0
        assert await finish(journal, mine[0], DeliveryState.DELIVERED) == 1
        (attempt,) = await journal.attempts(mine[0])
        assert attempt.outcome == "delivered" and attempt.number == 1

    async def test_in_order_targets_take_one_update_at_a_time(self, journal: Store) -> None:
        first = await post(journal, planned("a", "b"))
        second = await post(journal, planned("a", "b"), incident_id=first.incident.id, status="identified")
        claimed = await claim(journal)
        assert set(claimed) == {d.id for d in first.deliveries}
        a_first = next(d.id for d in first.deliveries if d.target == "a")
        await finish(journal, a_first, DeliveryState.DELIVERED)
        assert await claim(journal) == [next(d.id for d in second.deliveries if d.target == "a")]

    async def test_an_update_waiting_for_retry_holds_back_later_ones_on_its_target(self, journal: Store) -> None:
        first = await post(journal, planned())
        await post(journal, planned(), incident_id=first.incident.id, status="identified")
        (delivery_id,) = await claim(journal)
        await finish(journal, delivery_id, DeliveryState.PENDING, not_before=time.time() + 60)
        assert await claim(journal) == []  # the retry is not due, and nothing may overtake it

    async def test_latest_only_supersedes_queued_older_updates(self, journal: Store) -> None:
        plan = planned(ordering=Ordering.LATEST_ONLY, name="scripted")
        first = await post(journal, plan)
        second = await post(journal, plan, incident_id=first.incident.id, status="identified")
        assert [d.id for d in second.superseded] == [first.deliveries[0].id]
        (state,) = [d.state for d in await journal.deliveries(update_id=first.update.id)]
        assert state is DeliveryState.SUPERSEDED
        assert await claim(journal, ordering=Ordering.LATEST_ONLY) == [second.deliveries[0].id]

    async def test_latest_only_in_flight_update_is_superseded_if_it_comes_back(self, journal: Store) -> None:
        plan = planned(ordering=Ordering.LATEST_ONLY, name="scripted")
        first = await post(journal, plan)
        (in_flight,) = await claim(journal, ordering=Ordering.LATEST_ONLY)
        second = await post(journal, plan, incident_id=first.incident.id, status="identified")
        assert second.superseded == ()  # in flight: it may be going out right now
        assert await claim(journal, ordering=Ordering.LATEST_ONLY) == []  # one at a time per incident
        await finish(journal, in_flight, DeliveryState.PENDING, not_before=0.0)
        result = await journal.claim(
            "scripted", ordering=Ordering.LATEST_ONLY, owner="me", limit=10, now=time.time(), lease=60
        )
        assert [d.id for d in result.superseded] == [in_flight]
        assert [c.delivery.id for c in result.claimed] == [second.deliveries[0].id]

    async def test_latest_only_keeps_other_incidents_apart(self, journal: Store) -> None:
        plan = planned(ordering=Ordering.LATEST_ONLY, name="scripted")
        await post(journal, plan, title="One")
        await post(journal, plan, title="Two")
        assert len(await claim(journal, ordering=Ordering.LATEST_ONLY)) == 2

    async def test_skipped_targets_are_not_claimed(self, journal: Store) -> None:
        accepted = await post(journal, planned("a", "b"))
        assert await claim(journal, skip=("a",)) == [d.id for d in accepted.deliveries if d.target == "b"]

    async def test_deliveries_past_their_ttl_expire_instead_of_being_claimed(self, journal: Store) -> None:
        accepted = await post(journal, planned(ttl=5))
        result = await journal.claim(
            "scripted", ordering=Ordering.IN_ORDER, owner="me", limit=5, now=time.time() + 10, lease=60
        )
        assert result.claimed == [] and [d.id for d in result.expired] == [accepted.deliveries[0].id]
        assert result.expired[0].state is DeliveryState.EXPIRED

    async def test_an_expired_delivery_is_never_claimed_even_between_sweeps(self, journal: Store) -> None:
        """Expiry sweeps run once per poll interval; the claim itself must still refuse what is past its TTL."""
        await post(journal, planned(ttl=5))
        result = await finish_and_claim(
            journal,
            (),
            "scripted",
            ordering=Ordering.IN_ORDER,
            owner="me",
            limit=5,
            now=time.time() + 10,
            lease=60,
            sweep=False,
        )
        assert (result.claimed, result.expired) == ([], [])
        (waiting,) = await journal.deliveries(open_only=True)
        assert waiting.state is DeliveryState.PENDING  # left for the next sweep to record as expired

    async def test_outcomes_recorded_with_a_claim_are_recorded_first(self, journal: Store) -> None:
        """A lane records what finished and claims what is next in one transaction."""
        first = await post(journal, planned("a"))
        (delivery_id,) = await claim(journal)
        second = await post(journal, planned("a"), incident_id=first.incident.id, status="identified")
        now = time.time()
        result = await finish_and_claim(
            journal,
            [first_attempt(delivery_id, DeliveryState.DELIVERED, at=now, detail="ok")],
            "scripted",
            ordering=Ordering.IN_ORDER,
            owner="me",
            limit=5,
            now=now,
            lease=60,
        )
        assert [c.delivery.id for c in result.claimed] == [second.deliveries[0].id]  # its turn came at once
        assert [d.state for d in await journal.deliveries(update_id=first.update.id)] == [DeliveryState.DELIVERED]

    async def test_lapsed_leases_and_dead_owners_are_recovered(self, journal: Store) -> None:
        await post(journal, planned("a"))
        await post(journal, planned("b"))
        await post(journal, planned("c"))
        short, dead, alive = (
            await claim(journal, "short", limit=1, lease=0.01),
            await claim(journal, "dead", limit=1),
            await claim(journal, "alive", limit=1),
        )
        await asyncio.sleep(0.05)
        recovered = await journal.recover(now=time.time(), owner_is_dead=lambda owner: owner == "dead")
        assert {d.id for d in recovered} == {*short, *dead}
        assert {d.state for d in recovered} == {DeliveryState.PENDING}
        assert set(await claim(journal, "new")) == {*short, *dead}
        outcomes = [a.outcome for a in await journal.attempts(dead[0])]
        assert outcomes == ["interrupted"]
        assert alive

    async def test_released_leases_do_not_count_the_attempt(self, journal: Store) -> None:
        await post(journal, planned())
        (delivery_id,) = await claim(journal)
        assert await journal.release("me", None) == 1
        (delivery,) = await journal.deliveries(open_only=True)
        assert (delivery.id, delivery.state, delivery.attempts) == (delivery_id, DeliveryState.PENDING, 0)

    async def test_thread_parent_is_the_last_delivered_external_id(self, journal: Store) -> None:
        first = await post(journal, planned())
        (delivery_id,) = await claim(journal)
        await finish(journal, delivery_id, DeliveryState.DELIVERED, external_id="post-1")
        await post(journal, planned(), incident_id=first.incident.id, status="identified")
        result = await journal.claim(
            "scripted", ordering=Ordering.IN_ORDER, owner="me", limit=1, now=time.time(), lease=60
        )
        (claimed,) = result.claimed
        assert claimed.thread_parent == "post-1"
        assert [u.seq for u in claimed.history] == [1, 2] and claimed.incident.update_count == 2

    async def test_a_handoff_leases_deliveries_to_its_owner_as_they_are_accepted(self, journal: Store) -> None:
        """The accepting process's lane takes them in the accepting transaction, in plan order, as many
        as it has room for; the rest stay queued for any claim."""
        until = time.time() + 60
        accepted = await post(
            journal, planned("a", "b", "c"), handoff=Handoff(owner="me", lease_until=until, room={"scripted": 2})
        )
        assert [(c.delivery.target, c.delivery.state, c.delivery.attempts) for c in accepted.handed_off] == [
            ("a", DeliveryState.IN_FLIGHT, 1),
            ("b", DeliveryState.IN_FLIGHT, 1),
        ]
        first = accepted.handed_off[0]
        assert (first.incident, first.history, first.thread_parent, first.progress) == (
            accepted.incident,
            (accepted.update,),
            None,
            {},
        )
        journaled = {d.target: (d.state, d.attempts) for d in await journal.deliveries(update_id=accepted.update.id)}
        assert journaled == {
            "a": (DeliveryState.IN_FLIGHT, 1),
            "b": (DeliveryState.IN_FLIGHT, 1),
            "c": (DeliveryState.PENDING, 0),
        }
        assert [(d.target, d.state) for d in accepted.deliveries] == [
            ("a", DeliveryState.IN_FLIGHT),
            ("b", DeliveryState.IN_FLIGHT),
            ("c", DeliveryState.PENDING),
        ]
        assert await claim(journal, "other") == [accepted.deliveries[2].id]  # the handed-off two are leased
        assert await finish(journal, first.delivery.id, DeliveryState.DELIVERED, owner="other") == 0
        assert await finish(journal, first.delivery.id, DeliveryState.DELIVERED) == 1

    async def test_a_handoff_leaves_targets_that_must_wait_in_the_queue(self, journal: Store) -> None:
        """Skipped targets, paused ones, and targets with an earlier delivery still open (in flight or
        queued) are not handed off; nor is a second delivery to the same target in one plan."""
        earlier = await post(journal, planned("busy", "queued"))
        assert await claim(journal, "other", limit=1) == [earlier.deliveries[0].id]
        await journal.set_paused("scripted", "paused", paused=True, reason="test", now=time.time())
        handoff = Handoff(
            owner="me", lease_until=time.time() + 60, room={"scripted": 10}, skip_targets={"scripted": {"skipped"}}
        )
        accepted = await post(journal, planned("busy", "queued", "skipped", "paused", "free", "free"), handoff=handoff)
        assert [c.delivery.target for c in accepted.handed_off] == ["free"]
        assert [d.state for d in accepted.deliveries].count(DeliveryState.IN_FLIGHT) == 1
        second_free = accepted.deliveries[5]
        claimable = await claim(journal, "other")
        assert earlier.deliveries[1].id in claimable  # the queued one of the earlier update goes first
        assert second_free.id not in claimable  # its target's first delivery in this plan is still in flight

    async def test_nothing_is_handed_off_on_a_paused_channel(self, journal: Store) -> None:
        await journal.set_paused("scripted", "", paused=True, reason="test", now=time.time())
        accepted = await post(
            journal, planned("a"), handoff=Handoff(owner="me", lease_until=time.time() + 60, room={"scripted": 10})
        )
        assert accepted.handed_off == ()
        assert [d.state for d in await journal.deliveries(update_id=accepted.update.id)] == [DeliveryState.PENDING]

    async def test_a_repeated_idempotency_key_hands_nothing_off(self, journal: Store) -> None:
        first = await post(journal, planned("a"), key="k-1")
        again = await post(
            journal,
            planned("a"),
            key="k-1",
            handoff=Handoff(owner="me", lease_until=time.time() + 60, room={"scripted": 5}),
        )
        assert (again.duplicate, again.handed_off, again.update.id) == (True, (), first.update.id)
        assert await claim(journal) == [first.deliveries[0].id]

    async def test_deliveries_handed_off_to_a_dead_process_are_recovered(self, journal: Store) -> None:
        """A crash right after accepting loses nothing: the leases come back to the queue, the
        interrupted attempt counted, as for any claim."""
        accepted = await post(
            journal,
            planned("a", "b"),
            handoff=Handoff(owner="dead", lease_until=time.time() + 60, room={"scripted": 5}),
        )
        recovered = await journal.recover(now=time.time(), owner_is_dead=lambda owner: owner == "dead")
        assert {d.id for d in recovered} == {d.id for d in accepted.deliveries}
        assert {d.attempts for d in await journal.deliveries(update_id=accepted.update.id)} == {1}
        assert set(await claim(journal, "new")) == {d.id for d in accepted.deliveries}
        assert {d.attempts for d in await journal.deliveries(update_id=accepted.update.id)} == {2}
        assert [a.outcome for a in await journal.attempts(accepted.deliveries[0].id)] == ["interrupted"]

    async def test_a_handed_off_delivery_of_a_later_update_gets_its_thread_parent(self, journal: Store) -> None:
        first = await post(
            journal, planned(), handoff=Handoff(owner="me", lease_until=time.time() + 60, room={"scripted": 1})
        )
        (delivery,) = first.handed_off
        await finish(journal, delivery.delivery.id, DeliveryState.DELIVERED, external_id="post-1")
        later = await post(
            journal,
            planned(),
            incident_id=first.incident.id,
            status="identified",
            handoff=Handoff(owner="me", lease_until=time.time() + 60, room={"scripted": 1}),
        )
        (claimed,) = later.handed_off
        assert claimed.thread_parent == "post-1"
        assert [u.seq for u in claimed.history] == [1, 2] and claimed.incident.update_count == 2

    async def test_a_scoped_claim_takes_its_updates_and_what_holds_them_back(self, journal: Store) -> None:
        """A `send` delivers its own update, and on an in-order channel the earlier deliveries to the same
        targets that must go first; never other updates' work."""
        earlier = await post(journal, planned("a", "b"))
        other = await post(journal, planned("c"), title="Another incident")
        mine = await post(journal, planned("a"), incident_id=earlier.incident.id, status="identified")
        leased = await journal.claim(
            "scripted",
            ordering=Ordering.IN_ORDER,
            owner="me",
            limit=10,
            now=time.time(),
            lease=60,
            updates={mine.update.id},
        )
        assert [(c.delivery.update_id, c.delivery.target) for c in leased.claimed] == [(earlier.update.id, "a")]
        assert other.update.id not in {c.delivery.update_id for c in leased.claimed}
        nothing = await journal.claim(
            "scripted", ordering=Ordering.IN_ORDER, owner="me", limit=10, now=time.time(), lease=60, updates=set()
        )
        assert nothing.claimed == []

    async def test_a_scoped_claim_on_a_latest_only_channel_takes_only_its_updates(self, journal: Store) -> None:
        await post(journal, planned("a", ordering=Ordering.LATEST_ONLY), title="One")
        mine = await post(journal, planned("a", ordering=Ordering.LATEST_ONLY), title="Two")
        leased = await journal.claim(
            "latest",
            ordering=Ordering.LATEST_ONLY,
            owner="me",
            limit=10,
            now=time.time(),
            lease=60,
            updates={mine.update.id},
        )
        assert [c.delivery.update_id for c in leased.claimed] == [mine.update.id]

    async def test_an_interrupted_attempt_is_handed_back_and_logged(self, journal: Store) -> None:
        """Released as interrupted: due again, its attempt not counted, but shown in the ledger."""
        await post(journal, planned())
        (delivery_id,) = await claim(journal)
        assert await journal.release("me", [delivery_id], interrupted="the process stopped") == 1
        (delivery,) = await journal.deliveries(open_only=True)
        assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 0)
        assert [(a.outcome, a.error) for a in await journal.attempts(delivery_id)] == [
            ("interrupted", "the process stopped")
        ]
        assert await claim(journal) == [delivery_id]

    async def test_failed_deliveries_can_be_requeued_within_their_ttl(self, journal: Store) -> None:
        await post(journal, planned("a"))
        await post(journal, planned("b", ttl=0.01))
        for delivery_id in await claim(journal):
            await finish(journal, delivery_id, DeliveryState.FAILED, error="refused")
        await asyncio.sleep(0.05)
        assert await journal.requeue_failed(now=time.time()) == (1, 1)
        (requeued,) = await journal.deliveries(open_only=True)
        assert (requeued.target, requeued.attempts) == ("a", 0)

    async def test_pauses_are_kept_per_channel_and_target(self, journal: Store) -> None:
        await journal.set_paused("email", "", paused=True, reason="bad template", now=1.0)
        await journal.set_paused("webhook", "https://a", paused=True, reason="", now=2.0)
        await journal.set_paused("email", "", paused=False, reason="", now=3.0)
        controls = {(c.channel, c.target): c.paused for c in await journal.controls()}
        assert controls == {("email", ""): False, ("webhook", "https://a"): True}
