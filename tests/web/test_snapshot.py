"""`GET /api/v1/snapshot`: the journal as a SQLite file, for `broadcaster kit --from URL`, behind the API token."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.subscriptions import Subscriber
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.store.sqlite import SqliteStore
from broadcaster.store.sqlite.schema import SCHEMA_VERSION
from broadcaster.web import create_app
from broadcaster.web.openapi import document
from config import load_settings
from tests.support.helpers import eventually
from tests.web.conftest import AUTH, OTHER_TOKEN, TOKEN, Client, Service

UPDATE = {"title": "Checkout errors", "status": "investigating", "message": "Some card payments fail."}


async def test_the_snapshot_is_the_journal_as_a_sqlite_file(service: Service, tmp_path: Path) -> None:
    posted = await (await service.client.post("/api/v1/updates", json=UPDATE, headers=AUTH)).json()
    await service.runtime.store.suppress({"gone@example.org": "unsubscribed"}, source="unsubscribe", now=1.0)

    response = await service.client.get("/api/v1/snapshot", headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/vnd.sqlite3"
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.read()
    assert int(response.headers["Content-Length"]) == len(body)
    copy = tmp_path / "copy.db"
    copy.write_bytes(body)
    with sqlite3.connect(copy) as journal:
        assert journal.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        titles = journal.execute("SELECT message FROM updates WHERE incident_id = ?", (posted["incident_id"],))
        assert titles.fetchall() == [("Some card payments fail.",)]
        assert journal.execute("SELECT address FROM suppressions").fetchall() == [("gone@example.org",)]
    # The copy was streamed from a file unlinked at once: nothing is left in the data directory.
    assert list(service.runtime.settings.service.data_dir.glob(".snapshot-*")) == []


async def test_the_snapshot_needs_the_token(service: Service) -> None:
    response = await service.client.get("/api/v1/snapshot")
    assert response.status == 401
    assert (await service.client.get("/api/v1/snapshot", headers={"Authorization": "Bearer wrong"})).status == 401


async def test_only_a_token_named_for_it_may_download_the_journal(service: Service) -> None:
    """It holds every subscriber's address and webhook secret: a deploy bot's token is not enough."""
    response = await service.client.get("/api/v1/snapshot", headers={"Authorization": f"Bearer {OTHER_TOKEN}"})
    assert response.status == 403
    assert "[auth] snapshot_tokens" in (await response.json())["error"]


def test_the_snapshot_is_documented() -> None:
    operation = document()["paths"]["/snapshot"]["get"]
    assert set(operation["responses"]) == {"200", "401", "403", "503"}
    assert "application/vnd.sqlite3" in operation["responses"]["200"]["content"]


@asynccontextmanager
async def serving(workdir: Path, config: str) -> AsyncIterator[tuple[Client, Runtime]]:
    """The service on `config` (plus the API token), with its lanes, behind a test client."""
    (workdir / "broadcaster.toml").write_text(
        f'[auth]\napi_tokens = {{ deploy-bot = "{TOKEN}" }}\nsnapshot_tokens = ["deploy-bot"]\n{config}'
    )
    runtime = await open_runtime(load_settings(workdir / "broadcaster.toml"))
    try:
        async with (
            Dispatcher(runtime, poll_interval=0.05) as dispatcher,
            TestClient(TestServer(create_app(runtime, dispatcher))) as client,
        ):
            yield client, runtime
    finally:
        await runtime.close()


async def snapshot(client: Client, copy: Path) -> Path:
    response = await client.get("/api/v1/snapshot", headers=AUTH)
    assert response.status == 200, await response.text()
    await asyncio.to_thread(copy.write_bytes, await response.read())
    return copy


async def test_the_email_files_travel_in_the_snapshot(workdir: Path, tmp_path: Path) -> None:
    (workdir / "subscribers.txt").write_text("email,components\nAnn@Example.org,API;Checkout\nbob@example.org,\n")
    (workdir / "var").mkdir()
    (workdir / "var" / "email-suppressed.txt").write_text(
        "# hard bounces\nBounced@Example.org\t2024-05-01T10:00:00Z\t550 5.1.1 no such user\nnot-an-address\n"
    )
    async with serving(workdir, '[email]\nsubscribers_file = "subscribers.txt"\n') as (client, runtime):
        await runtime.store.suppress({"left@example.org": "unsubscribed"}, source="unsubscribe", now=1.0)
        copy = await snapshot(client, tmp_path / "copy.db")
    with sqlite3.connect(copy) as journal:
        assert journal.execute("SELECT address, reason, source FROM suppressions ORDER BY address").fetchall() == [
            ("bounced@example.org", "2024-05-01T10:00:00Z\t550 5.1.1 no such user", "file"),
            ("left@example.org", "unsubscribed", "unsubscribe"),
        ]
        rows = journal.execute("SELECT kind, address, state FROM subscribers ORDER BY address").fetchall()
    assert [
        (kind, address, json.loads(state)["components"], json.loads(state)["source"]) for kind, address, state in rows
    ] == [
        ("email", "ann@example.org", ["api", "checkout"], "file"),
        ("email", "bob@example.org", [], "file"),
    ]


async def test_a_redis_backed_service_answers_its_journal_as_sqlite(
    workdir: Path, tmp_path: Path, redis_url: str
) -> None:
    hook = Subscriber(kind="webhook", address="https://hooks.example.org/in", secret="whsec_c2VjcmV0LXNlY3JldA==")
    async with serving(workdir, f'[store]\nurl = "{redis_url}"\n') as (client, runtime):
        posted = await (await client.post("/api/v1/updates", json=UPDATE, headers=AUTH)).json()
        second = {"incident_id": posted["incident_id"], "status": "identified", "message": "A bad deploy."}
        assert (await client.post("/api/v1/updates", json=second, headers=AUTH)).status == 202
        store = runtime.store

        async def delivered() -> bool:
            return await store.deliveries(open_only=True) == []

        await eventually(delivered)
        await store.suppress({"gone@example.org": "unsubscribed"}, source="unsubscribe", now=1.0)
        await store.save_subscribers([hook, Subscriber(kind="email", address="ann@example.org", source="operator")])
        await store.set_paused("mirror", "", paused=True, reason="maintenance", now=2.0)
        copy = await snapshot(client, tmp_path / "copy.db")
        expected = (
            await store.site_history(recent=None),
            await store.deliveries(),
            await store.subscribers("webhook"),
            await store.controls(),
        )
    with sqlite3.connect(copy) as journal:
        assert journal.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert journal.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    # Opened as a journal, the copy reads as the Redis journal did: the same ids, updates and deliveries.
    kept = SqliteStore(copy, url=f"sqlite:///{copy}")
    await kept.open()
    try:
        assert await kept.site_history(recent=None) == expected[0]
        assert await kept.deliveries() == expected[1]
        assert await kept.subscribers("webhook") == expected[2]
        assert await kept.controls() == expected[3]
        assert await kept.suppressed() == frozenset({"gone@example.org"})
        assert [s.address for s in await kept.subscribers("email")] == ["ann@example.org"]
    finally:
        await kept.close()
