"""`broadcaster serve`: every lane running continuously, and the HTTP application (broadcaster.web).

It delivers what any entry point journals (the CLI on this host, another instance), recovers deliveries
whose lease ran out (a crashed process elsewhere), and records expiries even on paused lanes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Collection
from datetime import datetime

from aiohttp import web

from broadcaster.control import paused_mirror_targets
from broadcaster.dispatch import Dispatcher
from broadcaster.domain.errors import StoreError
from broadcaster.runtime import Runtime
from broadcaster.store.owners import owner_is_dead
from broadcaster.web import chatops, create_app, maintenance_watch
from broadcaster.web.chatops import CHATOPS
from broadcaster.web.keys import GATE
from broadcaster.web.overdue import watch_overdue
from broadcaster.web.pages.login import login_instructions
from channels.base import ChannelContext, CheckResult, Rebuilds
from config import ConfigError

log = logging.getLogger("broadcaster.service")
_DAY = 86_400
OUTAGE_CHECK = 1.0
"""Seconds between looks at whether this instance came back from running degraded."""
SITE_FOLLOW = 2.0
"""Seconds between an instance's looks, on a journal shared by instances, for incidents updated meanwhile."""
RECENT = 20
"""Incidents a look reads, the most recently updated first: more than are ever updated within SITE_FOLLOW."""


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
                if runtime.store.shared_by_instances:
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
        # asyncio's own text repeats the address as a tuple; the system's text for the errno says it all.
        # (A host name that does not resolve has a negative errno and its resolver's text.)
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or str(exc)
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


async def render_each_day(runtime: Runtime) -> None:
    """The status site's uptime bars end on the render's UTC date: just after each midnight UTC the mirror
    renders again (writing only what changed: the index and uptime.json)."""
    while True:
        await asyncio.sleep(_DAY - runtime.clock() % _DAY + 1)
        await render_site(runtime, why="the daily render")


async def render_after_outages(runtime: Runtime) -> None:
    """Once an instance that ran degraded is back on the shared journal, the mirror renders again from it: what
    this instance published meanwhile came from its replica, which lacked what other instances posted."""
    returns = runtime.store.standing().returns
    while True:
        await asyncio.sleep(OUTAGE_CHECK)
        seen, returns = returns, runtime.store.standing().returns
        if returns > seen:
            await render_site(runtime, why="the render after the shared journal came back")


async def keep_site_current(runtime: Runtime) -> None:
    """On a journal shared by instances, each host's mirror directories are its own, but an update's mirror
    delivery is made by whichever instance claims it. So each instance renders the whole site once at start
    (its copy may be behind), then every SITE_FOLLOW seconds what the latest updates of the incidents updated
    since its last look change (its own included: what its directories hold already is not written again)."""
    await render_site(runtime, why="the render at start", here_only=True)
    shown = await _recently_updated(runtime) or {}
    while True:
        await asyncio.sleep(SITE_FOLLOW)
        latest = await _recently_updated(runtime)
        if latest is None:
            continue
        changed = [incident_id for incident_id, at in latest.items() if shown.get(incident_id) != at]
        shown = latest
        if changed:
            await render_site(runtime, why="the render of recent updates", here_only=True, incident_ids=changed)


async def _recently_updated(runtime: Runtime) -> dict[str, datetime] | None:
    """When each of the most recently updated incidents was updated; None when the journal cannot be read (the
    lanes and /readyz say so)."""
    try:
        return {incident.id: incident.updated_at for incident in await runtime.store.incidents(limit=RECENT)}
    except StoreError as exc:
        log.debug("looking for updated incidents failed: %s", exc)
        return None


async def render_site(
    runtime: Runtime, *, why: str, here_only: bool = False, incident_ids: Collection[str] | None = None
) -> None:
    """The whole site into every mirror target; with `here_only`, into this host's own directories only, and
    given `incident_ids`, only what their latest updates change. Failures are logged."""
    mirror = runtime.registry.get("mirror").load().create(ChannelContext(runtime.settings, runtime.store))
    try:
        paused = await paused_mirror_targets(runtime)
        if not isinstance(mirror, Rebuilds):
            results = []
        elif here_only:
            results = await mirror.render_here(incident_ids, paused=paused)
        else:
            results = await mirror.render_all(paused=paused)
    except StoreError as exc:
        results = [CheckResult(target="journal", ok=False, detail=str(exc))]
    except Exception:  # a bug in one render must not end the renders after it
        log.exception("%s of the status site failed", why)
        results = []
    finally:
        await mirror.aclose()
    for result in results:
        if not result.ok:
            log.error("%s of the status site failed in %s: %s", why, result.target, result.detail)


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
