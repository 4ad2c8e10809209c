"""The service's application, in-process through aiohttp's test client: its routes over a real journal
and running lanes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import open_runtime
from broadcaster.web import create_app
from broadcaster.web.errors import CONTENT_SECURITY_POLICY
from channels.registry import REGISTRY
from config import load_settings
from tests.support.channels import Script, deliver, scripted_spec


@pytest.fixture
async def client(workdir: Path, scripts: dict[str, Script]) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    scripts["scripted"] = Script(deliver, targets=["a", "b"])
    registry = REGISTRY.copy()
    registry.register(scripted_spec("scripted"))
    runtime = await open_runtime(load_settings(None), registry=registry)
    try:
        async with Dispatcher(runtime) as dispatcher, TestClient(TestServer(create_app(runtime, dispatcher))) as test:
            yield test
    finally:
        await runtime.close()


async def test_healthz_answers(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_shows_the_journal_and_every_lane(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["store"]["backend"] == "sqlite"
    assert body["store"]["url"].startswith("sqlite:///")
    assert set(body["lanes"]) == {"scripted", "mirror"}
    assert body["lanes"]["scripted"]["state"] == "running"


async def test_an_unknown_path_is_404(client: TestClient[web.Request, web.Application]) -> None:
    assert (await client.get("/nothing-here")).status == 404


async def test_every_answer_carries_the_security_headers(client: TestClient[web.Request, web.Application]) -> None:
    """Answers from handlers and aiohttp's own refusals alike (raised, not returned): a 404 page framed
    or sniffed is as exploitable as any other."""
    answers = [
        await client.get("/healthz"),
        await client.get("/nothing-here"),
        await client.post("/healthz"),
        await client.get("/api/v1/nothing-here"),
    ]
    assert [answer.status for answer in answers] == [200, 404, 405, 401]
    for answer in answers:
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert (answer.headers["X-Content-Type-Options"], answer.headers["X-Frame-Options"]) == ("nosniff", "DENY")
