"""The service's own preflight (broadcaster.preflight): run once the service starts and then every [service]
check_interval seconds; the latest result is on /readyz and /metrics, and a target that starts or stops
failing is logged once, when it changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Final

from aiohttp import web

from broadcaster.preflight import Preflight, run_preflight
from broadcaster.web.keys import RUNTIME

log = logging.getLogger("broadcaster.preflight")


class LatestPreflight:
    """The last preflight this service ran (None until the first has finished)."""

    def __init__(self) -> None:
        self.latest: Preflight | None = None
        self._failing: set[tuple[str, str]] = set()

    def record(self, preflight: Preflight) -> None:
        failing = {(r.channel, r.target) for r in preflight.results if r.verdict == "failed"}
        for result in preflight.results:
            key = (result.channel, result.target)
            if result.verdict == "failed" and key not in self._failing:
                log.warning("preflight: %s %s failed: %s", result.channel, result.target, result.detail)
            elif result.verdict == "ok" and key in self._failing:
                log.warning("preflight: %s %s passes again", result.channel, result.target)
        self._failing = failing
        self.latest = preflight


PREFLIGHT: Final = web.AppKey("preflight", LatestPreflight)


def install(app: web.Application, *, every: float | None) -> None:
    """Hold the latest preflight; with `every` (seconds), also run it in the background while the
    application runs (`serve` does; the tests' applications mostly do not, so no check pings a receiver)."""
    app[PREFLIGHT] = LatestPreflight()
    if every is not None:
        app.cleanup_ctx.append(partial(_watch, every=every))


async def _watch(app: web.Application, *, every: float) -> AsyncIterator[None]:
    task = asyncio.create_task(_run_every(app, every))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _run_every(app: web.Application, every: float) -> None:
    while True:
        try:
            app[PREFLIGHT].record(await run_preflight(app[RUNTIME]))
        except Exception:  # a bug: logged, and tried again next time; never the end of the service
            log.exception("preflight failed to run")
        await asyncio.sleep(every)
