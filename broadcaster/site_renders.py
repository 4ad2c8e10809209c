"""The status site's renders that `serve` makes beside the mirror lane's deliveries: after each UTC midnight
(the uptime bars end on the render's date), once back from running degraded (what it published meanwhile
came from its replica), and, on a journal shared by instances, to keep this host's own mirror directories
current (an update's mirror delivery is made by whichever instance claims it: SiteKeeper)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from datetime import datetime
from typing import Final

from broadcaster.control import paused_mirror_targets
from broadcaster.domain.errors import StoreError
from broadcaster.runtime import Runtime
from channels.base import ChannelContext, CheckResult, Rebuilds

log = logging.getLogger("broadcaster.service")

_DAY: Final = 86_400
OUTAGE_CHECK: Final = 1.0
"""Seconds between looks at whether this instance came back from running degraded."""
SITE_FOLLOW: Final = 2.0
"""Seconds between an instance's looks, on a journal shared by instances, for incidents updated meanwhile."""
RETRY_AFTER_FAILURE: Final = 30.0
"""Seconds before a render that could not write (a full disk, a lost mount) is tried again."""
RECENT: Final = 20
"""Incidents a look reads, the most recently updated first: more than are ever updated within SITE_FOLLOW."""

IncidentMark = tuple[datetime, int]
"""What changes with each update an incident takes: its time, and its count of updates (an update adopted
after an outage that is older than the incident's latest leaves the time as it was)."""


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
    """SiteKeeper's looks, every SITE_FOLLOW seconds, until cancelled; no error ends them."""
    keeper = SiteKeeper(runtime)
    while True:
        try:
            await keeper.look()
        except Exception:  # a bug in one look must not leave this host's site behind for good
            log.exception("keeping this host's status site current failed; looking again")
        await asyncio.sleep(SITE_FOLLOW)


class SiteKeeper:
    """Keeps this host's mirror directories current on a journal shared by instances. The first look renders
    the whole site (the copy may be behind: this host was down, or is new); each later one renders what the
    latest updates of the incidents changed since the look before change (this instance's own too: what the
    directories hold already is not written again). A render that could not write is owed and tried again
    after RETRY_AFTER_FAILURE; a directory resumed from a pause gets the whole site (what it missed)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._shown: dict[str, IncidentMark] = {}
        self._owed: set[str] | None = None
        """Incidents whose updates this host's directories may lack; None: the whole site."""
        self._paused: frozenset[str] = frozenset()
        self._retry_at = 0.0

    async def look(self) -> None:
        # The journal is read before rendering, so an update landing during a render is seen at the next look.
        read = await self._read()
        if read is None:
            return
        latest, paused = read
        changed = {incident_id for incident_id, mark in latest.items() if self._shown.get(incident_id) != mark}
        self._shown = latest
        if self._paused - paused:
            self._owed = None
        self._paused = paused
        if self._owed is None:
            if self._runtime.store.standing().degraded:
                return  # its replica lacks the others' updates: render_after_outages renders it all once back
        else:
            self._owed |= changed
            if not self._owed:
                return
        if time.monotonic() < self._retry_at:
            return
        owed = None if self._owed is None else sorted(self._owed)
        why = "the render of this host's status site" if owed is None else "the render of recent updates"
        if await render_site(self._runtime, why=why, here_only=True, incident_ids=owed):
            self._owed, self._retry_at = set(), 0.0
        else:
            self._retry_at = time.monotonic() + RETRY_AFTER_FAILURE

    async def _read(self) -> tuple[dict[str, IncidentMark], frozenset[str]] | None:
        """The most recently updated incidents' marks, and the paused mirror targets; None when the journal
        cannot be read (the lanes and /readyz say so)."""
        try:
            incidents = await self._runtime.store.incidents(limit=RECENT)
            paused = frozenset(await paused_mirror_targets(self._runtime))
        except StoreError as exc:
            log.debug("looking for updated incidents failed: %s", exc)
            return None
        return {incident.id: (incident.updated_at, incident.update_count) for incident in incidents}, paused


async def render_site(
    runtime: Runtime, *, why: str, here_only: bool = False, incident_ids: Collection[str] | None = None
) -> bool:
    """The whole site into every mirror target; with `here_only`, into this host's own directories only, and
    given `incident_ids`, only what their latest updates change. Failures are logged; whether there was none."""
    mirror = runtime.registry.get("mirror").load().create(ChannelContext(runtime.settings, runtime.store))
    try:
        paused = await paused_mirror_targets(runtime)
        if not isinstance(mirror, Rebuilds):
            results = []
        elif here_only:
            # Bounded as the lane's attempts are: a hung mount must not hold this host's renders for ever.
            async with asyncio.timeout(runtime.settings.lane_policy("mirror").timeout):
                results = await mirror.render_here(incident_ids, paused=paused)
        else:
            results = await mirror.render_all(paused=paused)
    except StoreError as exc:
        results = [CheckResult(target="journal", ok=False, detail=str(exc))]
    except TimeoutError:
        results = [CheckResult(target="mirror", ok=False, detail="no render within the mirror lane's timeout")]
    except Exception:  # a bug in one render must not end the renders after it
        log.exception("%s of the status site failed", why)
        return False
    finally:
        await mirror.aclose()
    for result in results:
        if not result.ok:
            log.error("%s of the status site failed in %s: %s", why, result.target, result.detail)
    return all(result.ok for result in results)
