"""Webhook receivers for tests that run `broadcaster serve` against many targets: real aiohttp servers on
loopback, each target its own path."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from aiohttp import web


class UpdateReceiver:
    """Every target is its own path (/t/N); counts each (N, update id) received, answering after `delay`
    (`slow_delay` for the update named `slow`, say a fan-out still under way when Redis stops)."""

    def __init__(self, delay: float, slow_delay: float | None = None) -> None:
        self.delay = delay
        self.slow_delay = delay if slow_delay is None else slow_delay
        self.slow = ""
        self.hits: Counter[tuple[str, str]] = Counter()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/t/{n}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        update_id = body["meta"]["update_id"]
        self.hits[(request.match_info["n"], update_id)] += 1
        await asyncio.sleep(self.slow_delay if update_id == self.slow else self.delay)
        return web.Response(status=204)

    def reached(self, update_id: str) -> int:
        return sum(1 for (_, update), _count in self.hits.items() if update == update_id)
