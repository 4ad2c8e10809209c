"""Lanes side by side in one process: independence, and what reaches the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.lanes import lane as lanes
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.store import ClaimResult
from channels.base import Job, Receipt
from channels.registry import REGISTRY
from config import load_settings
from tests.conftest import WriteConfig
from tests.support.channels import SCRIPTS, Script, deliver, fail_permanently, hang, scripted_spec
from tests.support.helpers import eventually


@pytest.fixture
async def runtime(write_config: WriteConfig) -> AsyncIterator[Runtime]:
    registry = REGISTRY.copy()
    registry.register(scripted_spec("hang"))
    registry.register(scripted_spec("scripted"))
    path = write_config('[auth]\napi_tokens = ["s3cr3t-token-value"]\n')
    opened = await open_runtime(load_settings(path), registry=registry)
    yield opened
    await opened.close()


async def test_a_hanging_channel_does_not_delay_the_mirror(runtime: Runtime) -> None:
    """The mirror is delivered while the other channel's attempt is still hanging."""
    SCRIPTS["hang"] = Script(hang)
    async with Dispatcher(runtime, channels=["mirror", "hang"], drain=0.1) as dispatcher:
        accepted = await runtime.submit(
            UpdateDraft(title="DB down", status="investigating", message="x", channels=["mirror", "hang"])
        )
        dispatcher.wake()

        async def mirror_delivered() -> bool:
            deliveries = await runtime.store.deliveries(update_id=accepted.update.id)
            return any(d.channel == "mirror" and d.state is DeliveryState.DELIVERED for d in deliveries)

        await eventually(mirror_delivered)
        states = {d.channel: d.state for d in await runtime.store.deliveries(update_id=accepted.update.id)}
        assert states == {"mirror": DeliveryState.DELIVERED, "hang": DeliveryState.IN_FLIGHT}
        assert len(SCRIPTS["hang"].calls) == 1
        settled = await dispatcher.settle([accepted.update.id], wait=0.2)  # returns at its deadline
        assert {d.state for d in settled if d.channel == "hang"} == {DeliveryState.IN_FLIGHT}
    (handed_back,) = [d for d in await runtime.store.deliveries(update_id=accepted.update.id) if d.channel == "hang"]
    assert (handed_back.state, handed_back.attempts) == (DeliveryState.PENDING, 0)


async def test_secrets_never_reach_the_ledger(runtime: Runtime) -> None:
    """An adapter error quoting a configured secret is scrubbed before it is journaled."""
    SCRIPTS["scripted"] = Script(fail_permanently("server said: bad token s3cr3t-token-value"))
    async with Dispatcher(runtime, channels=["scripted"]) as dispatcher:
        accepted = await runtime.submit(
            UpdateDraft(title="x", status="investigating", message="x", channels=["scripted"])
        )
        dispatcher.wake()
        (delivery,) = await dispatcher.settle([accepted.update.id], wait=20)
    assert delivery.state is DeliveryState.FAILED
    assert delivery.last_error == "server said: bad token ********"


async def test_settle_returns_early_when_a_lane_is_paused(runtime: Runtime) -> None:
    """The CLI does not sit out its whole wait for a lane someone paused on purpose."""
    await runtime.store.set_paused("mirror", "", paused=True, reason="maintenance", now=runtime.clock())
    async with Dispatcher(runtime, channels=["mirror"]) as dispatcher:
        accepted = await runtime.submit(UpdateDraft(title="x", status="investigating", message="x"))
        dispatcher.wake()
        # Were it to wait for the paused lane, this would outlast the test's own timeout and fail it.
        (delivery,) = await dispatcher.settle([accepted.update.id], wait=600)
    assert delivery.state is DeliveryState.PENDING


async def test_the_dispatcher_hands_an_update_to_its_lanes_as_it_is_accepted(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dispatcher.submit leases the deliveries to this process's lanes in the accepting transaction: they
    are in flight, ours, before any lane has claimed anything, and no claim ever leases them."""
    gate = asyncio.Event()

    async def behave(job: Job) -> Receipt:
        await gate.wait()
        return await deliver(job)

    SCRIPTS["scripted"] = Script(behave, targets=["a", "b", "c"])
    leased_by_claims: list[str] = []
    claim = runtime.store.claim

    async def counting_claim(channel: str, **kwargs: Any) -> ClaimResult:
        result = await claim(channel, **kwargs)
        leased_by_claims.extend(c.delivery.id for c in result.claimed)
        return result

    monkeypatch.setattr(runtime.store, "claim", counting_claim)
    async with Dispatcher(runtime, channels=["scripted"]) as dispatcher:
        accepted = await dispatcher.submit(
            UpdateDraft(title="x", status="investigating", message="x", channels=["scripted"])
        )
        assert [c.delivery.target for c in accepted.handed_off] == ["a", "b", "c"]
        journaled = await runtime.store.deliveries(update_id=accepted.update.id)
        assert {d.state for d in journaled} == {DeliveryState.IN_FLIGHT}
        gate.set()
        settled = await dispatcher.settle([accepted.update.id], wait=20)
    assert {d.state for d in settled} == {DeliveryState.DELIVERED}
    assert sorted(call.target for call in SCRIPTS["scripted"].calls) == ["a", "b", "c"]
    assert leased_by_claims == []


async def test_a_fan_out_bigger_than_the_handoff_room_is_claimed_for_the_rest(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lanes, "HANDOFF_LIMIT", 2)
    SCRIPTS["scripted"] = Script(deliver, targets=[f"t{i}" for i in range(7)])
    async with Dispatcher(runtime, channels=["scripted"]) as dispatcher:
        accepted = await dispatcher.submit(
            UpdateDraft(title="x", status="investigating", message="x", channels=["scripted"])
        )
        assert len(accepted.handed_off) == 2
        settled = await dispatcher.settle([accepted.update.id], wait=20)
    assert [d.state for d in settled] == [DeliveryState.DELIVERED] * 7
    assert sorted(call.target for call in SCRIPTS["scripted"].calls) == [f"t{i}" for i in range(7)]


async def test_stopping_hands_back_deliveries_handed_off_but_not_started(runtime: Runtime) -> None:
    """Handed-off deliveries still waiting for a slot go back to the queue on stop, their attempt not
    counted, like the ones running and like those a lane claimed ahead."""
    slots = runtime.settings.lane_policy("hang").concurrency
    SCRIPTS["hang"] = Script(hang, targets=[f"t{i}" for i in range(slots + 2)])
    async with Dispatcher(runtime, channels=["hang"], drain=0.1) as dispatcher:
        accepted = await dispatcher.submit(
            UpdateDraft(title="x", status="investigating", message="x", channels=["hang"])
        )
        assert len(accepted.handed_off) == slots + 2
        await eventually(lambda: _true_if(len(SCRIPTS["hang"].calls) == slots))
    after = await runtime.store.deliveries(update_id=accepted.update.id)
    assert [(d.state, d.attempts) for d in after] == [(DeliveryState.PENDING, 0)] * (slots + 2)
    assert len(SCRIPTS["hang"].calls) == slots


async def _true_if(value: object) -> bool:
    return bool(value)


async def test_a_submit_cancelled_while_the_journal_commits_leaves_nothing_leased(runtime: Runtime) -> None:
    """The journal thread commits whether or not the caller still waits: what it handed off still reaches
    the lanes, so stopping hands it back (attempts not counted) instead of leaving it leased."""
    SCRIPTS["hang"] = Script(hang, targets=["a", "b"])
    async with Dispatcher(runtime, channels=["hang"], drain=0.1) as dispatcher:
        submitting = asyncio.create_task(
            dispatcher.submit(UpdateDraft(title="x", status="investigating", message="x", channels=["hang"]))
        )
        await asyncio.sleep(0)  # the accept is on the journal thread now
        submitting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await submitting
        (incident,) = await runtime.store.incidents()
    after = await runtime.store.deliveries(incident_id=incident.id)
    assert [(d.state, d.attempts) for d in after] == [(DeliveryState.PENDING, 0)] * 2


async def test_callers_settling_at_once_each_see_their_own_update_finish(runtime: Runtime) -> None:
    """Each chat command's summary waits on its own update: a later waiter never takes an earlier one's
    events. The poll interval is far beyond the test, so only the lane events can end the waits. (Both go to
    the one target, in order: the first update is delivered first.)"""
    releases = {"first": asyncio.Event(), "second": asyncio.Event()}

    async def held(job: Job) -> Receipt:
        await releases[job.update.message].wait()
        return await deliver(job)

    SCRIPTS["scripted"] = Script(held)
    async with Dispatcher(runtime, channels=["scripted"], poll_interval=600) as dispatcher:
        ids = {}
        for message in releases:
            draft = UpdateDraft(title=message, status="investigating", message=message, channels=["scripted"])
            ids[message] = (await dispatcher.submit(draft)).update.id
        waits = {message: asyncio.create_task(dispatcher.settle([ids[message]], wait=30)) for message in ids}
        await asyncio.sleep(0.1)  # both are waiting
        releases["first"].set()
        (first,) = await asyncio.wait_for(waits["first"], 10)
        assert first.state is DeliveryState.DELIVERED
        assert not waits["second"].done()
        releases["second"].set()
        (second,) = await asyncio.wait_for(waits["second"], 10)
        assert second.state is DeliveryState.DELIVERED
