"""`GET /healthz` (the process answers) and `GET /readyz` (the journal answers, and each lane's state)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broadcaster.domain.errors import StoreError
from broadcaster.lanes import LaneStatus
from broadcaster.web.keys import DISPATCHER, RUNTIME
from config.secrets import mask_url


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    lanes = {status.channel: _lane_json(status) for status in request.app[DISPATCHER].statuses()}
    try:
        waiting = len(await runtime.store.deliveries(open_only=True))
    except StoreError as exc:
        error = runtime.settings.scrubber(str(exc))
        return web.json_response({"status": "unavailable", "journal": error, "lanes": lanes}, status=503)
    journal = mask_url(runtime.store.url, keep_path=True)  # a store URL may carry a password
    return web.json_response({"status": "ready", "journal": journal, "waiting": waiting, "lanes": lanes})


def _lane_json(status: LaneStatus) -> dict[str, Any]:
    return {
        "state": "paused" if status.paused else "running",
        "in_flight": status.in_flight,
        "paused_targets": sorted(status.paused_targets),
        "open_breakers": sorted(status.open_breakers),
    }
