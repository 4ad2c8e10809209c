"""Targets are independent: a slow receiver and a dead one never hold back the healthy ones."""

from __future__ import annotations

from broadcaster.domain.vocabulary import DeliveryState
from tests.channels.webhook.conftest import Configure, broadcasting, post, settle, target
from tests.channels.webhook.receiver import Answer, Receiver
from tests.support.helpers import eventually


async def test_slow_and_dead_targets_do_not_delay_the_others(
    configure: Configure, receiver: Receiver, closed_port: int
) -> None:
    """Healthy targets are delivered while the slow target's first attempt is still waiting for its answer."""
    receiver.script("/slow", Answer(204, delay=30))  # answers long after its 0.5 s timeout
    settings = configure(
        target(receiver.url("/slow"), name="slow", timeout=0.5),
        target(f"http://127.0.0.1:{closed_port}/hook", name="dead"),
        target(receiver.url("/a"), name="a"),
        target(receiver.url("/b"), name="b"),
    )
    async with broadcasting(settings) as (runtime, dispatcher):
        accepted = await post(runtime, dispatcher)

        async def healthy_delivered() -> bool:
            states = {d.target: d.state for d in await runtime.store.deliveries(update_id=accepted.update.id)}
            return states["a"] is states["b"] is DeliveryState.DELIVERED

        await eventually(healthy_delivered)
        (slow,) = [d for d in accepted.deliveries if d.target == "slow"]
        slow_attempts = await runtime.store.attempts(slow.id)
        assert "/slow" in receiver.answering  # the slow request is still in its handler...
        assert slow_attempts == []  # ...and its first attempt has not even ended

        deliveries = await settle(dispatcher, accepted)
    assert deliveries["a"].state is deliveries["b"].state is DeliveryState.DELIVERED
    assert (deliveries["slow"].state, deliveries["slow"].last_error) == (
        DeliveryState.FAILED,
        "gave up after 3 attempts: no answer within 0.5s",
    )
    assert deliveries["dead"].state is DeliveryState.FAILED
    assert deliveries["dead"].last_error.startswith(
        f"gave up after 3 attempts: cannot connect to 127.0.0.1:{closed_port}"
    )
    assert len(receiver.at("/slow")) == 3
    assert len(receiver.at("/a")) == len(receiver.at("/b")) == 1


async def test_a_failing_target_keeps_its_own_order(configure: Configure, receiver: Receiver) -> None:
    """While one target waits to retry its first update, the other already has the second; each keeps its order."""
    receiver.script("/stuck", Answer(503, headers={"Retry-After": "1"}), Answer(204))
    settings = configure(target(receiver.url("/stuck"), name="stuck"), target(receiver.url("/ok"), name="ok"))
    async with broadcasting(settings) as (runtime, dispatcher):
        first = await post(runtime, dispatcher)
        second = await post(runtime, dispatcher, incident_id=first.incident.id, status="monitoring", message="Better.")

        async def ok_has_both() -> bool:
            return all(
                d.state is DeliveryState.DELIVERED
                for d in await runtime.store.deliveries(update_id=second.update.id)
                if d.target == "ok"
            )

        await eventually(ok_has_both)
        stuck_first = {d.target: d for d in await runtime.store.deliveries(update_id=first.update.id)}["stuck"]
        assert (stuck_first.state, stuck_first.attempts) == (DeliveryState.PENDING, 1)  # waiting for its retry
        await settle(dispatcher, second)
    stuck = [r.body for r in receiver.at("/stuck")]
    assert len(stuck) == 3  # the first update twice, then the second
    assert first.update.id.encode() in stuck[1] and second.update.id.encode() in stuck[2]
    ok = [r.body for r in receiver.at("/ok")]
    assert first.update.id.encode() in ok[0] and second.update.id.encode() in ok[1]
