"""`GET /healthz` (the process answers) and `GET /readyz` (intake can journal; and what an operator wants at a
glance: the store, each lane's state and backlog, the last preflight, overdue incidents).

/readyz answers 503 only when intake cannot journal: the journal cannot be read, or intake failed to write it
in the last half minute (journal_writes.py). A dead channel (a revoked X token, an SMTP relay
that is down) shows in its lane's figures but never takes the form and the API out of a load balancer,
since updates are still accepted and wait in the journal for the channel to come back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from broadcaster.domain.errors import StoreError
from broadcaster.domain.models import Incident
from broadcaster.lanes import LaneStatus
from broadcaster.web.backlog import Backlog
from broadcaster.web.keys import DISPATCHER, JOURNAL_FIGURES, JOURNAL_WRITES, RUNTIME
from broadcaster.web.preflight_watch import PREFLIGHT
from config.secrets import mask_url

NO_PREFLIGHT_YET: Final[dict[str, Any]] = {"ok": None, "checked_at": None, "results": []}
"""What /readyz shows until the service's first preflight has finished (or when it runs none)."""


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    statuses = request.app[DISPATCHER].statuses()
    now = runtime.clock()
    standing = runtime.store.standing()
    store: dict[str, Any] = {
        "backend": runtime.store.url.partition(":")[0],
        "url": mask_url(runtime.store.url, keep_path=True),  # a store URL may carry a password
        # True while the shared journal is out of reach and this instance accepts and sends from its local
        # replica (store.failover): still ready, since intake journals, but an operator wants to know.
        "degraded": standing.degraded,
    }
    if standing.degraded:
        store |= {
            "degraded_since": None
            if standing.since is None
            else datetime.fromtimestamp(standing.since, UTC).isoformat(timespec="seconds"),
            "reason": runtime.settings.scrubber(standing.reason),
            "accepted_updates": standing.accepted,
            "held_records": standing.waiting,
        }
    try:
        figures = request.app[JOURNAL_FIGURES]
        backlog = await figures.backlog([status.channel for status in statuses])
        overdue = await figures.overdue()
    except StoreError as exc:
        store["error"] = runtime.settings.scrubber(str(exc))
        lanes = {status.channel: _lane_json(status, None) for status in statuses}
        unreadable = {"status": "unavailable", "store": store, "lanes": lanes, "preflight": _preflight(request)}
        return web.json_response({**unreadable, "overdue": []}, status=503)
    body: dict[str, Any] = {
        "status": "ready",
        "store": store,
        "lanes": {status.channel: _lane_json(status, backlog[status.channel]) for status in statuses},
        "preflight": _preflight(request),
        "overdue": [_overdue_json(incident) for incident in overdue],
    }
    if (write_error := request.app[JOURNAL_WRITES].recent_failure(now)) is not None:
        store["error"] = write_error
        return web.json_response({**body, "status": "unavailable"}, status=503)
    return web.json_response(body)


def _preflight(request: web.Request) -> dict[str, Any]:
    latest = request.app[PREFLIGHT].latest
    return NO_PREFLIGHT_YET if latest is None else latest.to_json()


def _lane_json(status: LaneStatus, backlog: Backlog | None) -> dict[str, Any]:
    """A lane as this process runs it; its backlog as the journal has it (None when unreadable)."""
    return {
        "state": "paused" if status.paused else "running",
        "queue_depth": None if backlog is None else backlog.queue_depth,
        "oldest_waiting_s": None if backlog is None else round(backlog.oldest_waiting_s, 3),
        "paused_targets": sorted(status.paused_targets),
        "in_flight": status.in_flight,
        "open_breakers": sorted(status.open_breakers),
    }


def _overdue_json(incident: Incident) -> dict[str, Any]:
    due = incident.next_update_at
    return {"incident_id": incident.id, "name": incident.name, "next_update_at": due.isoformat() if due else None}
