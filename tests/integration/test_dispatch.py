"""Lanes side by side in one process: independence, and what reaches the ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from broadcaster.dispatch import Dispatcher
from broadcaster.models import UpdateDraft
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.vocabulary import DeliveryState
from channels.registry import REGISTRY
from config import load_settings
from tests.conftest import WriteConfig
from tests.support.channels import SCRIPTS, Script, fail_permanently, hang, scripted_spec
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
    async with Dispatcher(runtime, channels=["mirror", "hang"]) as dispatcher:
        accepted = await runtime.submit(UpdateDraft(title="DB down", status="investigating", message="x",
                                                    channels=["mirror", "hang"]))  # fmt: skip
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
        accepted = await runtime.submit(UpdateDraft(title="x", status="investigating", message="x",
                                                    channels=["scripted"]))  # fmt: skip
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
