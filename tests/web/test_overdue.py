"""The next-update cadence: an open incident whose "next update by" passed with no newer update is warned
about in the service's log once per incident and due time, from right after `serve` starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster.domain.models import UpdateDraft
from broadcaster.runtime import open_runtime
from broadcaster.service import serve
from broadcaster.web.overdue import OverdueWarnings, overdue_incidents
from config import load_settings
from tests.support.helpers import eventually
from tests.web.conftest import AUTH, Service


@pytest.fixture
def due() -> datetime:
    """A "next update by" ten minutes ahead: the journal refuses one in the past, so the tests move the
    clock past it instead."""
    return (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)


def overdue_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "broadcaster.overdue" and r.levelno == logging.WARNING]


async def open_incident(service: Service, title: str, due: datetime) -> str:
    update = {"title": title, "status": "investigating", "message": "Looking.", "next_update_at": due.isoformat()}
    response = await service.client.post("/api/v1/updates", json=update, headers=AUTH)
    assert response.status == 202
    return str((await response.json())["incident_id"])


async def test_an_overdue_incident_is_warned_about_once_per_due_time(
    service: Service, due: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    store, warnings = service.runtime.store, OverdueWarnings()
    checkout = await open_incident(service, "Checkout errors", due)
    later = await open_incident(service, "Slow search", due + timedelta(hours=1))

    async def check(at: datetime) -> list[str]:
        return [incident.id for incident in warnings.note(await overdue_incidents(store, now=at))]

    assert await check(due - timedelta(seconds=1)) == []
    assert await check(due + timedelta(seconds=1)) == [checkout]
    assert await check(due + timedelta(minutes=2)) == []  # still the same lateness: not repeated
    (message,) = overdue_warnings(caplog)
    assert f"incident {checkout} (Checkout errors) is overdue" in message
    assert due.isoformat() in message

    # A newer update promises the next one later: the incident is on time again, then misses that too.
    new_due = due + timedelta(minutes=30)
    update = {
        "incident_id": checkout,
        "status": "identified",
        "message": "Found it.",
        "next_update_at": new_due.isoformat(),
    }
    assert (await service.client.post("/api/v1/updates", json=update, headers=AUTH)).status == 202
    assert await check(due + timedelta(minutes=5)) == []
    assert await check(new_due + timedelta(seconds=1)) == [checkout]

    resolve = {"incident_id": checkout, "status": "resolved", "message": "Fixed."}
    assert (await service.client.post("/api/v1/updates", json=resolve, headers=AUTH)).status == 202
    assert await check(due + timedelta(hours=2)) == [later]  # a resolved incident owes no update
    assert len(overdue_warnings(caplog)) == 3


async def test_serve_warns_of_an_overdue_incident_right_after_start_up(
    workdir: Path, due: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = await open_runtime(load_settings(None))
    serving: asyncio.Task[int] | None = None
    try:
        draft = UpdateDraft(title="Checkout errors", status="investigating", message="Looking.", next_update_at=due)
        accepted = await runtime.submit(draft)
        runtime.clock = (due + timedelta(minutes=1)).timestamp
        ready = asyncio.Event()
        serving = asyncio.create_task(serve(runtime, host="127.0.0.1", port=0, ready=ready))
        await asyncio.wait_for(ready.wait(), timeout=20)

        async def warned() -> bool:
            return any(accepted.incident.id in message for message in overdue_warnings(caplog))

        await eventually(warned)
    finally:
        if serving is not None:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        await runtime.close()
