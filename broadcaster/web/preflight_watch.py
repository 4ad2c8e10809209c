"""The service's own preflight (broadcaster.preflight): run once the service starts and then every [service]
check_interval seconds; the latest result is on /readyz and /metrics, and a target that starts or stops
failing is logged once, when it changes."""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web

from broadcaster.preflight import Preflight, run_preflight
from broadcaster.web import background
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
        background.repeat(app, _check, every=every, log=log, what="the preflight")


async def _check(app: web.Application) -> None:
    app[PREFLIGHT].record(await run_preflight(app[RUNTIME]))
