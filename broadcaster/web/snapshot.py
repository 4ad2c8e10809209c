"""`GET /api/v1/snapshot`: a consistent copy of the journal as a SQLite file, for `broadcaster kit --from URL`
on a laptop that keeps a fallback kit. Like every /api/v1 call, it needs a bearer token; the copy holds the
subscribers and the suppression list, so it is never cached.

A Redis journal is exported into a new SQLite file through its reads (store.sqlite.importing). The email
files of this host, which the laptop does not have, are folded into the copy: the suppression file's
addresses (hard bounces, and those an operator added) into its suppressions, and the subscribers file's
subscribers into its subscribers, with source "file"; a blackout send from the kit then mails whom the
service would, and nobody who bounced or left."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Final

from aiohttp import web

from broadcaster.domain.errors import StoreError
from broadcaster.domain.subscriptions import Subscriber
from broadcaster.store.sqlite.importing import FILE_SOURCE, fold_email_files, sqlite_copy, suppression_entries
from broadcaster.web.errors import problem
from broadcaster.web.keys import CALLER, RUNTIME
from channels.subscriber_lists import Subscriber as SubscriberLine
from channels.subscriber_lists import SubscribersUnavailable, parse_subscribers
from config import Settings
from config.publish import target_name

MEDIA_TYPE: Final = "application/vnd.sqlite3"
CHUNK: Final = 256 * 1024


async def get_snapshot(request: web.Request) -> web.Response:
    """The copy is made into the data directory, opened, and unlinked at once: it is streamed from the open
    file after this handler returns (outside its time limit, however large the journal), and the disk space
    is freed when the stream ends, even if the client goes away."""
    runtime = request.app[RUNTIME]
    if request[CALLER] not in runtime.settings.auth.snapshot_tokens:
        return problem(
            403,
            f"the token {request[CALLER]!r} may not download the journal (it holds every subscriber); name it "
            "in [auth] snapshot_tokens to let it",
        )
    data_dir = runtime.settings.service.data_dir
    path = data_dir / f".snapshot-{secrets.token_hex(8)}.db"
    try:
        await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
        targets = [target_name(target) for target in runtime.settings.mirror.publish]
        await sqlite_copy(runtime.store, path, publish_targets=targets)
        await asyncio.to_thread(_fold_email_files, path, runtime.settings)
        file = await asyncio.to_thread(path.open, "rb")
    finally:
        path.unlink(missing_ok=True)
    size = os.fstat(file.fileno()).st_size
    return web.Response(
        body=_chunks(file),
        headers={
            "Content-Type": MEDIA_TYPE,
            "Content-Length": str(size),
            "Content-Disposition": 'attachment; filename="broadcaster.db"',
            "Cache-Control": "no-store",
        },
    )


async def _chunks(file: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK):
            yield chunk
    finally:
        file.close()


def _fold_email_files(path: Path, settings: Settings) -> None:
    email, now = settings.email, time.time()
    try:
        with email.suppression_path(settings.service.data_dir).open(encoding="utf-8", errors="replace") as lines:
            suppressed = suppression_entries(lines)
    except FileNotFoundError:
        suppressed = {}
    except OSError as exc:
        raise StoreError(f"cannot read the suppression file: {exc.strerror}") from None
    listed = _listed(email.subscribers_file, limit=email.max_subscribers) if email.subscribers_file else ()
    subscribers = [
        Subscriber(kind="email", address=s.key, components=tuple(sorted(s.components)), since=now, source=FILE_SOURCE)
        for s in listed
    ]
    fold_email_files(path, suppressed=suppressed, subscribers=subscribers)


def _listed(path: Path, *, limit: int) -> tuple[SubscriberLine, ...]:
    """The subscribers file's subscribers; none when there is no such file."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as lines:
            return parse_subscribers(lines, limit=limit).subscribers
    except FileNotFoundError:
        return ()
    except (OSError, SubscribersUnavailable) as exc:
        raise StoreError(f"cannot read the subscribers file: {getattr(exc, 'strerror', None) or exc}") from None
