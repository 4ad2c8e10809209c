"""Records of the writes meant for the shared journal that a degraded store keeps in its replica
(replica.Replica.hold), as JSON, and how each is written to the shared journal once it answers again."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from broadcaster.domain.errors import LeaseLost
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store.base import Outcome, Store

log = logging.getLogger("broadcaster.failover")
Record = dict[str, Any]


def finish(owner: str, outcomes: Sequence[Outcome]) -> Record:
    return {"kind": "finish", "owner": owner, "outcomes": [dataclasses.asdict(o) for o in outcomes]}


def progress(owner: str, delivery_id: str, entries: Mapping[str, str]) -> Record:
    return {"kind": "progress", "owner": owner, "delivery_id": delivery_id, "entries": dict(entries)}


def suppress(entries: Mapping[str, str], *, source: str, now: float) -> Record:
    return {"kind": "suppress", "entries": dict(entries), "source": source, "now": now}


def manifest(target: str, manifest: Mapping[str, str]) -> Record:
    return {"kind": "manifest", "target": target, "manifest": dict(manifest)}


def pause(channel: str, target: str, *, paused: bool, reason: str, now: float) -> Record:
    return {"kind": "pause", "channel": channel, "target": target, "paused": paused, "reason": reason, "now": now}


def revoke(session_id: str, *, until: float) -> Record:
    return {"kind": "revoke", "session_id": session_id, "until": until}


async def write(store: Store, record: Record) -> None:
    """Write a held record to `store` (the shared journal). An outcome whose lease ran out there meanwhile
    is not recorded (another instance may be attempting that delivery now): said in the log."""
    kind = record["kind"]
    if kind == "finish":
        outcomes = [_outcome(o) for o in record["outcomes"]]
        recorded = await store.finish(record["owner"], outcomes)
        if recorded < len(outcomes):
            log.warning(
                "%d outcome(s) of attempts made while the shared journal was out of reach came back after their "
                "lease ran out there; those deliveries may be attempted again",
                len(outcomes) - recorded,
            )
    elif kind == "progress":
        await _progress(store, record)
    elif kind == "suppress":
        await store.suppress(record["entries"], source=record["source"], now=record["now"])
    elif kind == "manifest":
        await store.save_publish_manifest(record["target"], record["manifest"])
    elif kind == "pause":
        await store.set_paused(
            record["channel"], record["target"], paused=record["paused"], reason=record["reason"], now=record["now"]
        )
    elif kind == "revoke":
        await store.revoke_session(record["session_id"], until=record["until"])
    else:
        log.error("a held record of an unknown kind %r was dropped", kind)


async def _progress(store: Store, record: Record) -> None:
    try:
        await store.save_progress(record["owner"], record["delivery_id"], record["entries"])
    except LeaseLost:
        log.warning("progress of delivery %s came back after its lease ran out; not saved", record["delivery_id"])


def _outcome(fields: dict[str, Any]) -> Outcome:
    return Outcome(**{**fields, "state": DeliveryState(fields["state"])})
