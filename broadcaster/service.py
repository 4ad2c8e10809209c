"""`broadcaster serve`: every lane running continuously, and the HTTP application (broadcaster.web).

It delivers what any entry point journals (the CLI on this host, another instance), recovers deliveries
whose lease ran out (a crashed process elsewhere), and records expiries even on paused lanes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.errors import StoreError
from broadcaster.runtime import Runtime, owner_is_dead
from broadcaster.web import create_app

log = logging.getLogger("broadcaster.service")

SWEEP_INTERVAL = 15.0  # seconds between sweeps for lapsed leases and expired deliveries


async def serve(runtime: Runtime, *, host: str, port: int, ready: asyncio.Event | None = None) -> int:
    """Run until SIGTERM or SIGINT; then stop claiming, hand unfinished deliveries back and exit 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Dispatcher(runtime, poll_interval=1.0) as dispatcher:
        runner = web.AppRunner(create_app(runtime, dispatcher), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        log.warning(
            "listening on http://%s:%s with lanes: %s", bound[0], bound[1], ", ".join(runtime.active_channels())
        )
        print(f"broadcaster: serving on http://{bound[0]}:{bound[1]}", flush=True)
        sweeper = asyncio.create_task(_sweep(runtime, dispatcher))
        if ready is not None:
            ready.set()
        try:
            await stop.wait()
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await runner.cleanup()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    print("broadcaster: stopped; unfinished deliveries are back in the journal", flush=True)
    return 0


async def _sweep(runtime: Runtime, dispatcher: Dispatcher) -> None:
    while True:
        await asyncio.sleep(SWEEP_INTERVAL)
        try:
            recovered = await runtime.store.recover(now=runtime.clock(), owner_is_dead=owner_is_dead)
            expired = await runtime.store.expire_due(now=runtime.clock())
        except StoreError as exc:
            log.error("sweep failed: %s", exc)
            continue
        if recovered:
            log.warning("took back %d deliveries whose lease ran out", len(recovered))
            dispatcher.wake()
        if expired:
            log.warning("%d deliveries expired before they could be sent", len(expired))
