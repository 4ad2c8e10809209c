"""`GET /readyz` over HTTP: ready while the journal answers (whatever the channels do), with the store,
each lane's backlog as the journal has it, the preflight and the overdue incidents; 503 only when the
journal cannot be read, or intake lately failed to write it."""

from __future__ import annotations

import resource
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import open_runtime
from broadcaster.web import create_app
from broadcaster.web.backlog import FRESH_FOR
from broadcaster.web.journal_writes import UNREADY_AFTER_FAILURE
from config import load_settings
from tests.conftest import WriteConfig
from tests.support.channels import fail_permanently
from tests.support.helpers import eventually
from tests.web.conftest import AUTH, Client, Service

UPDATE: dict[str, Any] = {"title": "Checkout errors", "status": "investigating", "message": "Some payments fail."}


async def readyz(client: Client) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status, await response.json()


async def test_ready_shows_the_store_each_lane_the_preflight_and_nothing_overdue(service: Service) -> None:
    status, body = await readyz(service.client)
    assert status == 200
    assert set(body) == {"status", "store", "lanes", "preflight", "overdue"}
    assert body["store"] == {
        "backend": "sqlite",
        "url": "sqlite:///var/broadcaster.db",
        "degraded": False,
    }
    idle = {"state": "running", "queue_depth": 0, "oldest_waiting_s": 0.0, "paused_targets": []}
    for lane in ("scripted", "mirror"):
        assert {key: body["lanes"][lane][key] for key in idle} == idle
    assert body["preflight"] == {"ok": None, "checked_at": None, "results": []}  # this app runs no preflight
    assert body["overdue"] == []


async def test_the_backlog_is_the_journal_s_open_deliveries_per_channel(service: Service) -> None:
    store = service.runtime.store
    await store.set_paused("scripted", "", paused=True, reason="test", now=service.runtime.clock())
    await store.set_paused("scripted", "b", paused=True, reason="test", now=service.runtime.clock())

    async def lane_paused() -> bool:
        state: str = (await readyz(service.client))[1]["lanes"]["scripted"]["state"]
        return state == "paused"

    await eventually(lane_paused)
    posted = await (await service.client.post("/api/v1/updates", json=UPDATE, headers=AUTH)).json()
    accepted_at = min(d.created_at for d in await store.deliveries(update_id=posted["update_id"]))
    service.runtime.clock = lambda: accepted_at + 90.0

    status, body = await readyz(service.client)
    assert status == 200
    scripted = body["lanes"]["scripted"]
    assert (scripted["queue_depth"], scripted["oldest_waiting_s"]) == (2, pytest.approx(90.0, abs=0.01))
    assert scripted["paused_targets"] == ["b"]


async def test_a_dead_channel_keeps_the_service_ready(service: Service) -> None:
    """Updates are still journaled while a channel fails: the load balancer must keep sending them."""
    service.script.behave = fail_permanently("401 Unauthorized: token revoked")
    posted = await (await service.client.post("/api/v1/updates", json=UPDATE, headers=AUTH)).json()

    async def failed() -> bool:
        deliveries = await service.runtime.store.deliveries(update_id=posted["update_id"])
        return {d.state for d in deliveries if d.channel == "scripted"} == {"failed"}

    await eventually(failed)
    status, body = await readyz(service.client)
    assert (status, body["status"]) == (200, "ready")
    assert body["lanes"]["scripted"]["queue_depth"] == 0


async def test_overdue_incidents_are_listed(service: Service) -> None:
    due = (datetime.now(UTC) + timedelta(minutes=10)).replace(microsecond=0)
    late = {**UPDATE, "title": "Late one", "next_update_at": due.isoformat()}
    on_time = {**UPDATE, "title": "On time", "next_update_at": (due + timedelta(hours=1)).isoformat()}
    posted = await (await service.client.post("/api/v1/updates", json=late, headers=AUTH)).json()
    assert (await service.client.post("/api/v1/updates", json=on_time, headers=AUTH)).status == 202
    assert (await readyz(service.client))[1]["overdue"] == []

    service.runtime.clock = (due + timedelta(minutes=1)).timestamp
    _status, body = await readyz(service.client)
    expected = {"incident_id": posted["incident_id"], "name": "Late one", "next_update_at": due.isoformat()}
    assert body["overdue"] == [expected]

    resolve = {"incident_id": posted["incident_id"], "status": "resolved", "message": "Fixed."}
    assert (await service.client.post("/api/v1/updates", json=resolve, headers=AUTH)).status == 202
    assert (await readyz(service.client))[1]["overdue"] == [expected]  # the read is shared for FRESH_FOR
    service.runtime.clock = (due + timedelta(minutes=1, seconds=FRESH_FOR)).timestamp
    assert (await readyz(service.client))[1]["overdue"] == []


@pytest.fixture
async def closed_journal(workdir: Path, write_config: WriteConfig) -> AsyncIterator[Client]:
    """The application over a journal that was closed under it, as when the disk holding it went away."""
    runtime = await open_runtime(load_settings(write_config('[store]\nurl = "sqlite:///var/journal.db"\n')))
    dispatcher = Dispatcher(runtime, channels=[])
    async with TestClient(TestServer(create_app(runtime, dispatcher))) as client:
        await runtime.store.close()
        yield client


async def test_a_journal_that_cannot_be_read_is_503(closed_journal: Client) -> None:
    status, body = await readyz(closed_journal)
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["store"]["error"] == "the journal is not open"
    assert (await closed_journal.get("/healthz")).status == 200  # the process itself is alive


@contextmanager
def files_limited_to(size: int) -> Iterator[None]:
    """While inside: this process cannot write any file past `size` bytes (EFBIG, as from a full disk;
    Python ignores SIGXFSZ). The soft limit is restored on the way out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


ONE_WAL_FRAME = 32 + 24 + 4096
"""The write-ahead log's header and one page: an update, which writes several pages, does not fit."""


async def test_intake_that_could_not_write_the_journal_is_503_for_a_while(service: Service) -> None:
    """A journal that reads but cannot be written (a full disk) refuses updates; /readyz, which only reads,
    must not call the instance ready while that lasts, and tries again once UNREADY_AFTER_FAILURE passes."""
    with files_limited_to(ONE_WAL_FRAME):
        refused = await service.client.post("/api/v1/updates", json=UPDATE, headers=AUTH)
    assert refused.status == 503
    assert (await refused.json())["error"].startswith("the journal could not be written")
    status, body = await readyz(service.client)
    assert (status, body["status"]) == (503, "unavailable")
    assert "disk" in body["store"]["error"]  # the journal's own words, for the operator
    assert body["lanes"]["scripted"]["queue_depth"] == 0  # the journal still reads

    failed_at = service.runtime.clock()
    service.runtime.clock = lambda: failed_at + UNREADY_AFTER_FAILURE + 1
    assert (await readyz(service.client))[0] == 200
