"""A new SQLite journal made from any store's reads: how a Redis journal becomes the SQLite file a fallback
kit carries (`broadcaster kit`, `GET /api/v1/snapshot`), and how the email files a blackout send needs (the
suppression file, the subscribers file) are folded into such a copy.

The export goes through the Store contract only: site_history (incidents and updates), deliveries (their
outcomes and external ids: an X thread continues under the last post), suppressed, subscribers, the
configured publish targets' manifests, controls and idempotency keys (a request sent again to the copy
answers its update); ids are kept. It is written with SQL into a journal
made from schema.SCHEMA, in one transaction, to a new file. It is not one atomic read of the source, as
VACUUM INTO is for SQLite: a delivery whose update was accepted between two reads is left out (the next
snapshot has both). Left out as well: attempt logs (the ledger's detail) and saved progress of open
deliveries (a fan-out resumed from the copy may mail again whom it had mailed); an update's
incident-as-after-it is rebuilt from the incident and its updates. An open delivery is copied as
pending with no lease: nobody holds it in the copy."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

from broadcaster.domain.errors import StoreError
from broadcaster.domain.models import Incident, IncidentHistory, changes_to_json, incident_to_json, to_epoch
from broadcaster.domain.subscriptions import Subscriber, state_of
from broadcaster.domain.vocabulary import ComponentState, DeliveryState
from broadcaster.store.base import Delivery, KeyedRequest, LaneControl, Store
from broadcaster.store.sqlite import manifests
from broadcaster.store.sqlite import subscribers as subscriber_rows
from broadcaster.store.sqlite.accepting import write_incident
from broadcaster.store.sqlite.journal import SqliteStore
from broadcaster.store.sqlite.schema import SCHEMA, SCHEMA_VERSION
from config.email import is_address

FILE_SOURCE: Final = "file"
"""The source of a suppression or subscriber folded in from the email files."""
EXPORTED_REASON: Final = "suppressed in the journal this copy was made from"
_OPEN: Final = (DeliveryState.PENDING, DeliveryState.IN_FLIGHT)


@dataclasses.dataclass(frozen=True, slots=True)
class Exported:
    """What a store's reads gave, ready to be written."""

    histories: list[IncidentHistory]
    deliveries: list[Delivery]
    suppressed: frozenset[str]
    subscribers: list[Subscriber]
    manifests: dict[str, Mapping[str, str]]
    controls: list[LaneControl]
    keyed: list[KeyedRequest]


async def sqlite_copy(store: Store, path: Path, *, publish_targets: Collection[str]) -> None:
    """A SQLite journal at `path` (a new file) with what `store` holds: the SQLite journal's own consistent
    copy, or an export through the reads of any other (which must be open)."""
    if isinstance(store, SqliteStore):
        await store.snapshot_to(path)
    else:
        await export_journal(store, path, publish_targets=publish_targets)


async def export_journal(store: Store, path: Path, *, publish_targets: Collection[str]) -> None:
    """Write what `store` holds into a new SQLite journal at `path` (see the module's docstring). On
    failure nothing is left at `path`."""
    exported = await read_export(store, publish_targets=publish_targets)
    await asyncio.to_thread(_write_new, path, exported)


async def read_export(store: Store, *, publish_targets: Collection[str], every_delivery: bool = True) -> Exported:
    """What a copy of `store` holds. Without `every_delivery`, only the ended deliveries of open incidents:
    what sending from the copy needs (an X thread continues under the incident's last post), bounded by
    open incidents rather than by the whole history, and nothing a copy could send again (store.failover)."""
    found = {target: await store.publish_manifest(target) for target in publish_targets}
    histories = await store.site_history(recent=None)
    if every_delivery:
        deliveries = await store.deliveries()
    else:
        deliveries = [
            delivery
            for history in histories
            if history.incident.is_open
            for delivery in await store.deliveries(incident_id=history.incident.id)
            if delivery.state not in _OPEN
        ]
    return Exported(
        histories=histories,
        deliveries=deliveries,
        suppressed=await store.suppressed(),
        subscribers=[*await store.subscribers("email"), *await store.subscribers("webhook")],
        manifests={target: manifest for target, manifest in found.items() if manifest is not None},
        controls=await store.controls(),
        keyed=await store.keyed_requests(),
    )


def _write_new(path: Path, exported: Exported) -> None:
    if path.exists():
        raise StoreError(f"{path} exists already; a copy goes to a new file")
    try:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.executescript(f"BEGIN;\n{SCHEMA}\nPRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;")
            conn.execute("BEGIN")
            write_exported(conn, exported, now=time.time())
            conn.execute("COMMIT")
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"cannot write the journal copy {path}: {exc}") from None
        raise


def write_exported(conn: sqlite3.Connection, exported: Exported, *, now: float) -> None:
    """Insert what was exported into a journal with none of it (in the caller's transaction)."""
    updates: set[str] = set()
    for history in exported.histories:
        _write_history(conn, history)
        updates.update(update.id for update in history.updates)
    conn.executemany(
        "INSERT INTO deliveries (id, update_id, incident_id, update_seq, channel, target, state, attempts, "
        "max_attempts, created_at, not_before, expires_at, finished_at, last_error, detail, external_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [_delivery_row(d) for d in exported.deliveries if d.update_id in updates],
    )
    conn.executemany(
        "INSERT INTO suppressions (address, reason, source, added_at) VALUES (?, ?, 'import', ?)",
        [(address, EXPORTED_REASON, now) for address in sorted(exported.suppressed)],
    )
    subscriber_rows.save(conn, exported.subscribers)
    for target, manifest in exported.manifests.items():
        manifests.save_publish_manifest(conn, target, manifest, now)
    conn.executemany(
        "INSERT INTO controls (channel, target, paused, reason, updated_at) VALUES (?, ?, ?, ?, ?)",
        [(c.channel, c.target, int(c.paused), c.reason, c.updated_at) for c in exported.controls],
    )
    # Beside the updates rather than in their own column: a key of the source may answer an update it did not make.
    conn.executemany(
        "INSERT INTO idempotency_keys (key, update_id, request_digest) VALUES (?, ?, ?)",
        [(k.key, k.update_id, k.request_digest) for k in exported.keyed if k.update_id in updates],
    )


def _write_history(conn: sqlite3.Connection, history: IncidentHistory) -> None:
    write_incident(conn, history.incident)
    conn.executemany(
        "INSERT INTO updates (id, incident_id, seq, status, impact, message, components, created_at, "
        "next_update_at, author, incident_after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                *(update.id, update.incident_id, update.seq, update.status.value, update.impact.value),
                *(update.message, json.dumps(changes_to_json(update.components)), update.created_at.timestamp()),
                *(to_epoch(update.next_update_at), update.author, json.dumps(incident_to_json(after))),
            )
            for update, after in zip(history.updates, incidents_after(history), strict=True)
        ],
    )


def incidents_after(history: IncidentHistory) -> list[Incident]:
    """The incident as it stood right after each of its updates: the last is the incident itself; an
    earlier one takes that update's status, impact, time, promise and components (what a delivery of that
    update, claimed from the copy, renders)."""
    incident, found = history.incident, []
    components: dict[str, ComponentState] = {}
    for update in history.updates:
        components |= {change.name: change.new for change in update.components}
        found.append(
            dataclasses.replace(
                incident,
                status=update.status,
                impact=update.impact,
                components=dict(components),
                updated_at=update.created_at,
                next_update_at=update.next_update_at,
                update_count=update.seq,
                resolved_at=incident.resolved_at if update.status.is_final else None,
            )
        )
    if found:
        found[-1] = incident
    return found


def _delivery_row(d: Delivery) -> tuple[object, ...]:
    state = DeliveryState.PENDING if d.state in _OPEN else d.state
    return (
        *(d.id, d.update_id, d.incident_id, d.update_seq, d.channel, d.target, state.value, d.attempts),
        *(d.max_attempts, d.created_at, d.not_before, d.expires_at, d.finished_at, d.last_error, d.detail),
        d.external_id,
    )


# --- the email files, folded into a copy


def suppression_entries(lines: Iterable[str]) -> dict[str, str]:
    """The suppression file's entries, lower-cased address -> its note (what follows it on the line, or "").
    The file's form: the address first on a line, then anything after whitespace; blank lines, lines
    starting with # and lines with no address first are skipped, as the email channel skips them."""
    entries: dict[str, str] = {}
    for line in lines:
        fields = line.split(None, 1)
        if fields and not fields[0].startswith("#") and is_address(fields[0]):
            entries.setdefault(fields[0].lower(), " ".join(fields[1:]).strip())
    return entries


def fold_email_files(path: Path, *, suppressed: Mapping[str, str], subscribers: Sequence[Subscriber]) -> None:
    """Add to the journal copy at `path` the suppression file's entries (address -> note) and the
    subscribers file's subscribers, each with source "file", so a copy taken elsewhere (over the API) mails
    nobody the service would not and nobody fewer. The journal's own entries win where both have one."""
    now = time.time()
    try:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT OR IGNORE INTO suppressions (address, reason, source, added_at) VALUES (?, ?, ?, ?)",
                [
                    (address, note or "in the suppression file", FILE_SOURCE, now)
                    for address, note in suppressed.items()
                ],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO subscribers (kind, address, state) VALUES (?, ?, ?)",
                [(s.kind, s.address, state_of(s)) for s in subscribers],
            )
            conn.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot add the email files to the journal copy {path}: {exc}") from None
