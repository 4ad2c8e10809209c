"""A journal with a little of everything, and the mirror rendered from it, for the mirror's tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from broadcaster.domain.models import UpdateDraft
from broadcaster.runtime import Runtime
from channels.base import ChannelContext
from channels.mirror import MirrorChannel

XSS = "<script>alert(1)</script>"


async def journal_scenario(runtime: Runtime) -> dict[str, str]:
    """An outage being handled, a resolved one, and a scheduled maintenance."""

    async def submit(**fields: Any) -> str:
        accepted = await runtime.submit(UpdateDraft.model_validate(fields))
        return accepted.incident.id

    old = await submit(
        title="Login slowness",
        status="investigating",
        message="Slow logins.",
        components={"Dashboard": "degraded_performance"},
    )
    await submit(incident_id=old, status="resolved", message="Fixed.")
    outage = await submit(
        title=f"API errors {XSS}",
        status="investigating",
        message=f"Looking.\n\n{XSS} & more",
        components={"API": "partial_outage"},
        next_update_at=datetime.now(UTC) + timedelta(hours=1),
    )
    await submit(
        incident_id=outage,
        status="identified",
        message="Found a bad deploy.",
        components={"API": "partial_outage", "Billing": "degraded_performance"},
    )
    maintenance = await submit(
        title="Database upgrade",
        status="scheduled",
        message="Planned work.",
        scheduled_for=datetime.now(UTC) + timedelta(days=1),
        scheduled_until=datetime.now(UTC) + timedelta(days=1, hours=2),
    )
    return {"old": old, "outage": outage, "maintenance": maintenance}


async def render(runtime: Runtime) -> Path:
    """`broadcaster render`: the whole site into the first directory, which is returned."""
    mirror = MirrorChannel.create(ChannelContext(runtime.settings, runtime.store))
    try:
        results = await mirror.render_all()
    finally:
        await mirror.aclose()
    assert all(result.ok for result in results), results
    return Path(str(runtime.settings.mirror.directories[0]))


def load(site: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((site / "api/v2" / name).read_text())
    return data


@asynccontextmanager
async def served(directory: Path) -> AsyncIterator[str]:
    """`directory` served by a plain static file server on 127.0.0.1, as a web server would serve the
    mirror; yields its base URL."""
    app = web.Application()
    app.router.add_static("/", directory)
    runner = web.AppRunner(app)
    await runner.setup()
    server = web.TCPSite(runner, "127.0.0.1", 0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
