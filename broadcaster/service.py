"""`broadcaster serve`: every lane running continuously, and the HTTP application (broadcaster.web).

It delivers what any entry point journals (the CLI on this host, another instance), recovers deliveries
whose lease ran out (a crashed process elsewhere), and records expiries even on paused lanes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.errors import StoreError, os_reason
from broadcaster.runtime import Runtime
from broadcaster.site_renders import keep_site_current, render_after_outages, render_each_day
from broadcaster.store.owners import owner_is_dead
from broadcaster.web import chatops, create_app, maintenance_watch
from broadcaster.web.chatops import CHATOPS
from broadcaster.web.keys import GATE
from broadcaster.web.overdue import watch_overdue
from broadcaster.web.pages.login import login_instructions
from config import ConfigError

log = logging.getLogger("broadcaster.service")


async def serve(runtime: Runtime, *, host: str, port: int, ready: asyncio.Event | None = None) -> int:
    """Run until SIGTERM or SIGINT; then stop claiming, hand unfinished deliveries back and exit 0. An
    address that cannot be listened on (in use, not this host's) is a ConfigError, before any lane runs."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    dispatcher = Dispatcher(runtime, poll_interval=runtime.settings.service.poll_interval)
    app = create_app(
        runtime,
        dispatcher,
        preflight_every=runtime.settings.service.check_interval,
        maintenance_every=maintenance_watch.CHECK_EVERY,
    )
    runner = web.AppRunner(app, access_log=None)
    try:
        await runner.setup()
        # Listening comes first, so a port in use stops the service before a lane has claimed or sent
        # anything. An update posted in the moment before the lanes start is journaled all the same, and
        # they claim it once they run.
        bound = await _listen(runner, host, port)
        taking_back: set[asyncio.Task[None]] = set()

        def holder_gone() -> None:  # a process of this host that held leases ended: take them back now
            task = asyncio.create_task(_take_back(runtime, dispatcher))
            taking_back.add(task)
            task.add_done_callback(taking_back.discard)

        async with (
            dispatcher,
            runtime.store.follow(
                on_work=dispatcher.wake, on_controls=dispatcher.controls_changed, on_holder_gone=holder_gone
            ),
        ):
            log.info("listening on http://%s with lanes: %s", bound, ", ".join(runtime.active_channels()))
            print(f"broadcaster: serving on http://{bound}", flush=True)
            for line in login_instructions(app[GATE], runner.addresses[0], on_terminal=sys.stdout.isatty()):
                print(line, flush=True)
            remind = chatops.Reminders(app[CHATOPS].poster, runtime.settings)
            chores = [
                asyncio.create_task(_sweep(runtime, dispatcher)),
                asyncio.create_task(watch_overdue(runtime, remind=remind)),
            ]
            if "mirror" in runtime.active_channels():
                chores.append(asyncio.create_task(render_each_day(runtime)))
                chores.append(asyncio.create_task(render_after_outages(runtime)))
                if runtime.store.shared_by_instances and runtime.settings.mirror.directories:
                    chores.append(asyncio.create_task(keep_site_current(runtime)))
            if ready is not None:
                ready.set()
            try:
                await stop.wait()
            finally:
                for chore in chores:
                    chore.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*chores, return_exceptions=True)
                await runner.cleanup()  # stop answering while the lanes still run, then stop them
    finally:
        if runner.server is not None:  # set up, but the service never got as far as the cleanup above
            await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    print("broadcaster: stopped; unfinished deliveries are back in the journal", flush=True)
    return 0


async def _listen(runner: web.AppRunner, host: str, port: int) -> str:
    """Listen on host:port; the address actually bound (port 0 picks one), as host:port."""
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        reason = os_reason(exc)
        raise ConfigError(
            f"cannot listen on {_address(host, port)}: {reason} (choose another --port or [service] port, or --host)"
        ) from None
    bound_host, bound_port = runner.addresses[0][:2]
    return _address(str(bound_host), int(bound_port))


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _sweep(runtime: Runtime, dispatcher: Dispatcher) -> None:
    while True:
        await asyncio.sleep(runtime.settings.service.sweep_interval)
        await _take_back(runtime, dispatcher)
        try:
            expired = await runtime.store.expire_due(now=runtime.clock())
        except StoreError as exc:
            log.error("sweep failed: %s", exc)
            continue
        if expired:
            log.warning("%d deliveries expired before they could be sent", len(expired))


async def _take_back(runtime: Runtime, dispatcher: Dispatcher) -> None:
    """Return to the queue what dead processes of this host held, and any lease that ran out."""
    try:
        recovered = await runtime.store.recover(now=runtime.clock(), owner_is_dead=owner_is_dead)
    except StoreError as exc:
        log.error("taking back leases failed: %s", exc)
        return
    if recovered:
        log.warning("took back %d deliveries whose holder is gone or whose lease ran out", len(recovered))
        dispatcher.wake()
