"""The service's own preflight: run when it starts (and every [service] check_interval), its results on
/readyz and /metrics; a failing channel shows there without making the service unready."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import open_runtime
from broadcaster.web import create_app
from config import load_settings
from tests.conftest import WriteConfig
from tests.support.helpers import eventually
from tests.web.conftest import Client


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def checking(workdir: Path, write_config: WriteConfig, closed_port: int) -> AsyncIterator[Client]:
    """The service with the mirror (fine) and a webhook target nobody listens on, preflighting hourly."""
    write_config(
        f'[webhook]\nenabled = true\n[[webhook.targets]]\nurl = "http://127.0.0.1:{closed_port}/hook"\nname = "dead"\n'
    )
    runtime = await open_runtime(load_settings(workdir / "broadcaster.toml"))
    try:
        dispatcher = Dispatcher(runtime, channels=[])
        async with TestClient(TestServer(create_app(runtime, dispatcher, preflight_every=3600))) as client:
            yield client
    finally:
        await runtime.close()


async def test_a_failing_channel_shows_on_readyz_and_metrics_and_the_service_stays_ready(
    checking: Client, closed_port: int
) -> None:
    async def checked() -> bool:
        return (await (await checking.get("/readyz")).json())["preflight"]["checked_at"] is not None

    await eventually(checked, within=30)
    answer = await checking.get("/readyz")
    body = await answer.json()
    assert (answer.status, body["status"]) == (200, "ready")
    preflight = body["preflight"]
    assert preflight["ok"] is False
    verdicts = {(r["channel"], r["target"]): (r["verdict"], r["detail"]) for r in preflight["results"]}
    assert verdicts[("journal", "sqlite:///var/broadcaster.db")] == ("ok", "readable")
    assert verdicts[("mirror", "public")][0] == "ok"
    assert verdicts[("webhook", "dead")][0] == "failed"
    assert f"cannot connect to 127.0.0.1:{closed_port}" in verdicts[("webhook", "dead")][1]
    assert verdicts[("email", "*")] == ("skipped", "not enabled")
    assert verdicts[("x", "*")] == ("skipped", "not enabled")
    metrics = await (await checking.get("/metrics")).text()
    assert 'broadcaster_preflight_failed_targets{channel="webhook"} 1.0' in metrics
    assert 'broadcaster_preflight_failed_targets{channel="mirror"} 0.0' in metrics
    assert "broadcaster_preflight_checked_timestamp_seconds 0.0" not in metrics
