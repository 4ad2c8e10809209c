"""The kit's journal: a consistent snapshot of the service's, taken from the local journal (the store's
snapshot_to) or from a running service over the API (`GET /api/v1/snapshot` with a token), checked, and
put in place of the kit's previous one.

A kit that was used in a blackout holds updates the service never saw: its old journal is then kept beside
the new one (and the step says so) rather than overwritten."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import sqlite3
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from broadcaster.domain.errors import StoreError
from broadcaster.kit.steps import BAD_INPUT, KitError
from broadcaster.store import Store, open_store
from broadcaster.store.sqlite import SqliteStore
from broadcaster.store.sqlite.importing import sqlite_copy
from channels.transport.http import client_session
from config.secrets import mask_url
from config.sections import NetworkSettings

SNAPSHOT_PATH: Final = "/api/v1/snapshot"
CHUNK: Final = 256 * 1024
MAX_SNAPSHOT: Final = 8 * 1024**3
"""Bytes: far beyond a journal of years (tens of MiB), short of filling the laptop's disk."""
DOWNLOAD_TIMEOUT: Final = aiohttp.ClientTimeout(total=600, connect=15, sock_read=60)
"""A journal of years downloads in seconds; these bound a service that stops answering."""
_SIDE_FILES: Final = ("-wal", "-shm")


def snapshot_local(store_url: str, destination: Path, *, publish_targets: Collection[str]) -> None:
    """Copy the journal the settings name to `destination` (a new file): a SQLite journal's consistent copy,
    or a Redis journal exported into a new SQLite journal through its reads (`publish_targets`: the names of
    the publish targets whose manifests come along)."""
    store = open_store(store_url)
    if isinstance(store, SqliteStore) and not store.path.is_file():
        raise KitError(
            f"there is no journal at {store.path} ([store] url {store_url!r} here); run the kit where the "
            "service's configuration and journal are, or take the snapshot with --from URL",
            code=BAD_INPUT,
        )
    try:
        asyncio.run(_copy(store, destination, publish_targets))
    except StoreError as exc:
        raise KitError(str(exc), code=BAD_INPUT) from None


async def _copy(store: Store, destination: Path, publish_targets: Collection[str]) -> None:
    if isinstance(store, SqliteStore):  # copied from its file: opening it would migrate the service's journal
        await store.snapshot_to(destination)
        return
    await store.open()
    try:
        await sqlite_copy(store, destination, publish_targets=publish_targets)
    finally:
        await store.close()


def snapshot_url(base: str) -> str:
    """`base` (the service's address, as [service] public_url names it) with the snapshot's path. Plain
    http is refused but to this machine: the token and every subscriber's address would cross in clear."""
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KitError(f"--from {mask_url(base)!r}: give the service's http(s) address", code=BAD_INPUT)
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise KitError(
            f"--from {mask_url(base)!r}: plain http would send the token and the subscribers in clear; use "
            "https:// (http:// only to this machine: localhost, 127.0.0.1, ::1)",
            code=BAD_INPUT,
        )
    trimmed = base.rstrip("/")
    return trimmed if trimmed.endswith(SNAPSHOT_PATH) else trimmed + SNAPSHOT_PATH


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def snapshot_remote(base: str, token: str, destination: Path, network: NetworkSettings) -> None:
    """Download the snapshot from the service at `base` into `destination` (a new file; nothing is left
    there if the download fails)."""
    url = snapshot_url(base)
    try:
        asyncio.run(_download(url, token, destination, network))
    except BaseException:
        destination.unlink(missing_ok=True)
        raise


async def _download(url: str, token: str, destination: Path, network: NetworkSettings) -> None:
    shown = mask_url(url, keep_path=True)
    try:
        async with (
            client_session(network, limit=1, timeout=DOWNLOAD_TIMEOUT) as session,
            session.get(url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=False) as answer,
        ):
            if answer.status in (401, 403):
                raise KitError(f"{shown} refused the token (HTTP {answer.status})", code=BAD_INPUT)
            if answer.status != 200:
                raise KitError(f"{shown} answered HTTP {answer.status}: {await _problem(answer)}")
            if (answer.content_length or 0) > MAX_SNAPSHOT:
                raise KitError(f"{shown} offers {answer.content_length:,} bytes, more than {MAX_SNAPSHOT:,}")
            received = 0
            with destination.open("xb") as file:  # a CLI's only task: nothing else waits on this loop
                async for chunk in answer.content.iter_chunked(CHUNK):
                    received += len(chunk)
                    if received > MAX_SNAPSHOT:
                        raise KitError(f"{shown} sent more than {MAX_SNAPSHOT:,} bytes; the download was stopped")
                    file.write(chunk)
                file.flush()
                os.fsync(file.fileno())
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise KitError(f"cannot download {shown}: {type(exc).__name__}: {exc}") from None


async def _problem(answer: aiohttp.ClientResponse) -> str:
    """The service's {"error"} text, or the start of whatever it answered."""
    try:
        body = await answer.json(content_type=None)
    except ValueError:
        return (await answer.text(errors="replace"))[:200]
    return str(body.get("error", ""))[:500] if isinstance(body, dict) else ""


def check_journal(path: Path) -> str:
    """Refuse a file that is not a whole broadcaster journal; otherwise say what it holds."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            if conn.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise KitError(f"the snapshot {path} is damaged (quick_check failed)")
            incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
            updates = conn.execute("SELECT count(*) FROM updates").fetchone()[0]
    except sqlite3.Error as exc:
        raise KitError(f"the snapshot {path} is not a broadcaster journal: {exc}") from None
    return f"{incidents} incidents, {updates} updates, {path.stat().st_size / 1024:.0f} KiB"


RESTORED: Final = "restored from a kit"
MANIFEST_DESTINATION: Final = "/destination"
"""The key of a publish manifest naming where its target pointed (channels.mirror.publish.manifest)."""


def mark_manifests_restored(path: Path) -> None:
    """Make every publish manifest in the kit's journal name no destination, so a publish from the kit is a
    first publish: it adds and overwrites but deletes nothing, since the remote may have moved on since."""
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "UPDATE publish_manifests SET manifest = json_set(manifest, ?, ?)",
            (f'$."{MANIFEST_DESTINATION}"', RESTORED),
        )


def schema_version(path: Path) -> int:
    """The journal's schema version (PRAGMA user_version)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise KitError(f"cannot read the schema version of {path}: {exc}") from None
    return version


def put_in_place(snapshot: Path, journal: Path) -> Path | None:
    """Make `snapshot` the kit's journal. The old one is removed, unless it holds updates the snapshot does
    not (sent from the kit in a blackout): it is then kept beside it, and its new name returned."""
    kept: Path | None = None
    if journal.exists():
        if _updates(journal) - _updates(snapshot):
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = journal.with_name(f"{journal.name}.before-{stamp}")
            for suffix in ("", *_SIDE_FILES):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{journal}{suffix}", f"{kept}{suffix}")
        else:
            for suffix in _SIDE_FILES:  # a stale WAL beside a new journal would be replayed into it
                Path(f"{journal}{suffix}").unlink(missing_ok=True)
    os.replace(snapshot, journal)
    return kept


def _updates(journal: Path) -> set[str]:
    try:
        with contextlib.closing(sqlite3.connect(journal)) as conn:
            return {row[0] for row in conn.execute("SELECT id FROM updates")}
    except sqlite3.Error as exc:
        raise KitError(f"cannot read the kit's journal {journal}: {exc}") from None


def scratch_path(directory: Path) -> Path:
    """A new file name in `directory` for a snapshot on its way."""
    return directory / f".snapshot-{secrets.token_hex(6)}.db"
