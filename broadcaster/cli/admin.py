"""`broadcaster status | render | check | config | pause | resume`."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from typing import Any

from broadcaster.cli.drafts import one_of
from broadcaster.cli.output import deliveries_table, delivery_json, print_json, say, table, when
from broadcaster.cli.secrecy import scrub_output
from broadcaster.cli.standing import degraded_json, degraded_lines
from broadcaster.control import paused_mirror_targets, set_paused
from broadcaster.domain.errors import InputError, NotFoundError
from broadcaster.domain.models import ID_PATTERN, Incident, Update
from broadcaster.domain.statuspage import iso
from broadcaster.preflight import Preflight, run_preflight
from broadcaster.runtime import Runtime
from broadcaster.store import Store
from channels.base import ChannelContext, CheckResult, Rebuilds
from config import Settings
from config.secrets import mask_url, masked_dump


async def status(args: argparse.Namespace, runtime: Runtime) -> int:
    store = runtime.store
    await store.expire_due(now=runtime.clock())  # so the ledger never shows as pending what can no longer go out
    if args.id is None:
        return await _overview(args, runtime)
    if not ID_PATTERN.match(args.id):
        raise unknown_id(args.id, "incident or update")
    try:
        history = await store.history(args.id)
    except NotFoundError:
        update = await known_update(store, args.id, what="incident or update")
        deliveries = await store.deliveries(update_id=update.id)
        if args.json:
            print_json(
                {
                    "update_id": update.id,
                    "incident_id": update.incident_id,
                    "author": update.author,
                    "deliveries": [delivery_json(d) for d in deliveries],
                }
            )
            return 0
        say(
            f"Update {update.id} of incident {update.incident_id}: {update.status.value}, {when(update.created_at)}"
            f"{_by(update.author)}"
        )
        for delivery in deliveries:
            say(f"\n{delivery.channel} {delivery.target}: {delivery.state.value}")
            for attempt in await store.attempts(delivery.id):
                say(
                    f"  attempt {attempt.number} {when(attempt.finished_at)} {attempt.outcome} {attempt.error}".rstrip()
                )
        return 0
    deliveries = await store.deliveries(incident_id=history.incident.id)
    incident = history.incident
    if args.json:
        print_json(
            {
                "incident_id": incident.id,
                "name": incident.name,
                "status": incident.status.value,
                "impact": incident.impact.value,
                "updates": [
                    {
                        "update_id": u.id,
                        "status": u.status.value,
                        "created_at": iso(u.created_at),
                        "author": u.author,
                        "message": u.message,
                        "deliveries": [delivery_json(d) for d in deliveries if d.update_id == u.id],
                    }
                    for u in history.updates
                ],
            }
        )
        return 0
    say(f"{incident.name} ({incident.id}): {incident.status.value}, impact {incident.impact.value}")
    for update in history.updates:
        say(f"\n#{update.seq} {update.id} {update.status.value} at {when(update.created_at)}{_by(update.author)}")
        say(f"  {update.message.splitlines()[0]}")
        deliveries_table([d for d in deliveries if d.update_id == update.id])
    return 0


def unknown_id(text: str, what: str) -> NotFoundError:
    """The one wording for an id the journal does not have (or that is no id at all), whichever command."""
    return NotFoundError(
        f"no {what} with id {text!r} in the journal (`broadcaster status` lists the incidents)", {what: "unknown"}
    )


async def known_incident(store: Store, incident_id: str) -> Incident:
    """The incident with this id, or unknown_id's refusal (exit 2)."""
    if ID_PATTERN.match(incident_id):
        with contextlib.suppress(NotFoundError):
            return await store.incident(incident_id)
    raise unknown_id(incident_id, "incident")


async def known_update(store: Store, update_id: str, *, what: str = "update") -> Update:
    """The update with this id, or unknown_id's refusal (exit 2)."""
    if ID_PATTERN.match(update_id):
        with contextlib.suppress(NotFoundError):
            return await store.update(update_id)
    raise unknown_id(update_id, what)


def _by(author: str) -> str:
    """Who posted an update, for the ledger (never shown on the public site)."""
    return f" by {author}" if author else ""


async def _overview(args: argparse.Namespace, runtime: Runtime) -> int:
    store = runtime.store
    controls = [c for c in await store.controls() if c.paused]
    incidents = await store.incidents(limit=20)
    waiting = await store.deliveries(open_only=True)
    lanes = {name: "enabled" for name in runtime.active_channels()}
    for control in controls:
        where = f" target {control.target}" if control.target else ""
        lanes[control.channel] = f"paused{where}" + (f" ({control.reason})" if control.reason else "")
    if args.json:
        print_json(
            {
                "lanes": lanes,
                "waiting": [delivery_json(d) for d in waiting],
                "incidents": [
                    {
                        "id": i.id,
                        "name": i.name,
                        "status": i.status.value,
                        "impact": i.impact.value,
                        "updated_at": iso(i.updated_at),
                    }
                    for i in incidents
                ],
                "degraded": degraded_json(runtime.settings.service.data_dir),
            }
        )
        return 0
    for line in degraded_lines(runtime.settings.service.data_dir):
        say(line)
    say("Lanes: " + (", ".join(f"{name} {state}" for name, state in lanes.items()) or "none enabled"))
    counts = Counter(f"{d.channel} {d.state.value}" for d in waiting)
    say("Waiting deliveries: " + (", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "none"))
    if incidents:
        say()
        rows = [(i.id, i.status.value, i.impact.value, when(i.updated_at), i.name) for i in incidents]
        table(rows, ("incident", "status", "impact", "updated", "name"))
    else:
        say("No incidents in the journal.")
    return 0


async def render(_args: argparse.Namespace, runtime: Runtime) -> int:
    if not runtime.settings.mirror.enabled:
        raise InputError("the mirror is not enabled ([mirror] enabled = false)")
    mirror = runtime.registry.get("mirror").load().create(ChannelContext(runtime.settings, runtime.store))
    try:
        if not isinstance(mirror, Rebuilds):
            raise InputError("this build's mirror cannot rebuild the site")
        results = await mirror.render_all(paused=await paused_mirror_targets(runtime))
    finally:
        await mirror.aclose()
    return _report(results, "mirror")


async def check(args: argparse.Namespace, runtime: Runtime) -> int:
    """Exit 0 when everything checked passed, 3 when anything failed (2, as always, for bad configuration)."""
    return report_preflight(args, await run_preflight(runtime))


def report_preflight(args: argparse.Namespace, preflight: Preflight) -> int:
    if args.json:
        print_json(preflight.to_json())
    else:
        for result in preflight.results:
            verdict = {"ok": "ok", "failed": "FAIL", "skipped": "skip"}[result.verdict]
            say(scrub_output(f"{verdict:5} {result.channel} {result.target}: {result.detail}"))
    return 0 if preflight.ok else 3


def _report(results: list[CheckResult], channel: str) -> int:
    for result in results:
        say(scrub_output(f"{'ok' if result.ok else 'FAIL':5} {channel} {result.target}: {result.detail}"))
    return 3 if any(not result.ok for result in results) else 0


def show_config(settings: Settings, source: str) -> int:
    print(f"# settings from {source} and the environment; secrets masked", file=sys.stderr)
    effective: dict[str, Any] = masked_dump(settings)
    effective["effective"] = {
        "store_url": mask_url(settings.store_url, keep_path=True),
        "lanes": {name: _policy(settings, name) for name in ("email", "x", "webhook", "mirror")},
    }
    print_json(effective)
    return 0


def _policy(settings: Settings, channel: str) -> dict[str, Any]:
    policy = settings.lane_policy(channel)
    return {name: getattr(policy, name) for name in policy.__slots__}


async def pause(args: argparse.Namespace, runtime: Runtime, *, paused: bool) -> int:
    one_of(args.channel, runtime.registry.names(), "", "channel")
    await set_paused(runtime, args.channel, args.target, paused=paused, reason=args.reason)
    if paused and args.channel not in runtime.active_channels():
        print(
            f"warning: {args.channel} is not enabled ([{args.channel}] enabled = false), so it sends nothing "
            "anyway; the pause is recorded and holds its deliveries once it is enabled.",
            file=sys.stderr,
        )
    what = f"{args.channel} target {args.target}" if args.target else args.channel
    if paused:
        say(
            f"{what} paused: its deliveries stay queued (their time-to-live still runs) until "
            f"`broadcaster resume {args.channel}{' --target ' + args.target if args.target else ''}`."
        )
    else:
        say(f"{what} resumed: running lanes pick up its queued deliveries within a second.")
    return 0
