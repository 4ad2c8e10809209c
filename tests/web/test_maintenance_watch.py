"""Scheduled maintenance moves on by itself as its window opens and closes, unless a person moved it first;
several instances looking at once post one update of each."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import ComponentState, Status
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.web.maintenance_watch import AUTHOR, move_due_maintenance
from channels.registry import REGISTRY
from config import load_settings
from tests.conftest import WriteConfig
from tests.support.channels import Script, deliver, scripted_spec

START = datetime(2030, 6, 1, 2, 0, tzinfo=UTC)
END = START + timedelta(hours=2)


@pytest.fixture
async def running(workdir: Path, write_config: WriteConfig) -> AsyncIterator[tuple[Runtime, Dispatcher]]:
    runtime = await open_runtime(load_settings(write_config("[mirror]\ndirectories = ['public']\n")))
    runtime.clock = (START - timedelta(days=1)).timestamp
    try:
        async with Dispatcher(runtime, poll_interval=0.05) as dispatcher:
            yield runtime, dispatcher
    finally:
        await runtime.close()


async def schedule(dispatcher: Dispatcher) -> str:
    draft = UpdateDraft(
        title="Database upgrade",
        status=Status.SCHEDULED,
        message="We will upgrade the database.",
        components={"Database": ComponentState.UNDER_MAINTENANCE},
        scheduled_for=START,
        scheduled_until=END,
    )
    return (await dispatcher.submit(draft)).incident.id


def at(runtime: Runtime, moment: datetime) -> None:
    runtime.clock = moment.timestamp


async def test_the_window_opening_and_closing_moves_the_maintenance(running: tuple[Runtime, Dispatcher]) -> None:
    runtime, dispatcher = running
    incident_id = await schedule(dispatcher)
    assert await move_due_maintenance(runtime, dispatcher) == [], "nothing is due a day ahead"

    at(runtime, START + timedelta(seconds=5))
    assert len(await move_due_maintenance(runtime, dispatcher)) == 1
    history = await runtime.store.history(incident_id)
    latest = history.updates[-1]
    assert (latest.status, latest.author) == (Status.IN_PROGRESS, AUTHOR)
    assert "Database" in latest.message and "by 2030-06-01 04:00 UTC" in latest.message
    assert await move_due_maintenance(runtime, dispatcher) == [], "moved once"

    at(runtime, END + timedelta(seconds=5))
    assert len(await move_due_maintenance(runtime, dispatcher)) == 1
    incident = await runtime.store.incident(incident_id)
    assert incident.status is Status.COMPLETED
    assert incident.components == {"Database": ComponentState.OPERATIONAL}


async def test_a_window_that_passed_while_nothing_ran_goes_straight_to_completed(
    running: tuple[Runtime, Dispatcher],
) -> None:
    runtime, dispatcher = running
    incident_id = await schedule(dispatcher)
    at(runtime, END + timedelta(hours=1))
    await move_due_maintenance(runtime, dispatcher)
    statuses = [u.status for u in (await runtime.store.history(incident_id)).updates]
    assert statuses == [Status.SCHEDULED, Status.COMPLETED]


async def test_what_a_person_took_over_is_left_to_them(running: tuple[Runtime, Dispatcher]) -> None:
    """A person who moved it to verifying has taken it over: neither the open nor the close moves it."""
    runtime, dispatcher = running
    incident_id = await schedule(dispatcher)
    at(runtime, START - timedelta(minutes=10))
    taken = UpdateDraft(incident_id=incident_id, status=Status.VERIFYING, message="Done early; checking.")
    await dispatcher.submit(taken)
    for moment in (START + timedelta(seconds=5), END + timedelta(seconds=5)):
        at(runtime, moment)
        assert await move_due_maintenance(runtime, dispatcher) == []
    assert [u.status for u in (await runtime.store.history(incident_id)).updates] == [
        Status.SCHEDULED,
        Status.VERIFYING,
    ]


async def test_a_maintenance_rescheduled_to_a_new_window_moves_again(running: tuple[Runtime, Dispatcher]) -> None:
    runtime, dispatcher = running
    incident_id = await schedule(dispatcher)
    at(runtime, START + timedelta(seconds=5))
    await move_due_maintenance(runtime, dispatcher)
    later = START + timedelta(days=1)
    again = UpdateDraft(
        incident_id=incident_id,
        status=Status.SCHEDULED,
        message="Postponed to tomorrow.",
        scheduled_for=later,
        scheduled_until=later + timedelta(hours=2),
    )
    await dispatcher.submit(again)
    at(runtime, later + timedelta(seconds=5))
    assert len(await move_due_maintenance(runtime, dispatcher)) == 1, "the new window's opening is its own"


async def test_instances_looking_at_once_post_one_update(running: tuple[Runtime, Dispatcher]) -> None:
    runtime, dispatcher = running
    incident_id = await schedule(dispatcher)
    at(runtime, START + timedelta(seconds=5))
    posted = await asyncio.gather(*(move_due_maintenance(runtime, dispatcher) for _ in range(3)))
    assert sum(len(ids) for ids in posted) == 1
    assert [u.status for u in (await runtime.store.history(incident_id)).updates] == [
        Status.SCHEDULED,
        Status.IN_PROGRESS,
    ]


async def test_a_quiet_maintenance_stays_quiet(
    workdir: Path, write_config: WriteConfig, scripts: dict[str, Script]
) -> None:
    """Announced on the status site alone, it moves on there alone: nobody is messaged at 02:00."""
    scripts["scripted"] = Script(deliver, targets=["subscribers"])
    registry = REGISTRY.copy()
    registry.register(scripted_spec("scripted"))
    runtime = await open_runtime(load_settings(write_config("[mirror]\ndirectories = ['public']\n")), registry=registry)
    runtime.clock = (START - timedelta(days=1)).timestamp
    try:
        async with Dispatcher(runtime, poll_interval=0.05) as dispatcher:
            draft = UpdateDraft(
                title="Quiet upgrade",
                status=Status.SCHEDULED,
                message="Planned work.",
                scheduled_for=START,
                scheduled_until=END,
                channels=["mirror"],
            )
            incident_id = (await dispatcher.submit(draft)).incident.id
            at(runtime, START + timedelta(seconds=5))
            (moved,) = await move_due_maintenance(runtime, dispatcher)
            assert {d.channel for d in await runtime.store.deliveries(update_id=moved)} == {"mirror"}
            assert (await runtime.store.incident(incident_id)).status is Status.IN_PROGRESS
    finally:
        await runtime.close()
