"""The static-file status mirror: the whole status site, written into every configured directory.

It renders from the journal's latest state, never from the update in hand, so a late or repeated
render is never stale and rendering the same journal twice gives the same files. Files are written
by threads of the channel's own, so a hung network mount stalls this channel and nothing else."""

from __future__ import annotations

import asyncio
import errno
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, Self

from broadcaster.domain.models import Incident, Update
from broadcaster.domain.statuspage import INCIDENT_LIMIT, Site, build_site
from broadcaster.domain.vocabulary import Kind
from channels.base import (
    Channel,
    ChannelContext,
    CheckResult,
    Job,
    JournalReader,
    PermanentError,
    Preview,
    Receipt,
    TransientError,
)
from channels.mirror.files import probe, write_tree
from channels.mirror.pages import render_site
from config.mirror import MirrorSettings

# A path that exists as the wrong kind of thing will not fix itself by waiting.
_PERMANENT_ERRNOS: Final = {errno.ENOTDIR, errno.EISDIR}


class MirrorChannel(Channel):
    name = "mirror"

    def __init__(self, settings: MirrorSettings, *, public_url: str, journal: JournalReader) -> None:
        self._settings = settings
        self._public_url = public_url
        self._journal = journal
        self._directories = {str(path): path for path in settings.directories}
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, len(self._directories)), thread_name_prefix="broadcaster-mirror"
        )

    @classmethod
    def create(cls, context: ChannelContext) -> Self:
        settings = context.settings
        return cls(settings.mirror, public_url=settings.mirror.public_url, journal=context.journal)

    async def send(self, job: Job) -> Receipt:
        directory = self._directories.get(job.target)
        if directory is None:
            raise PermanentError(f"{job.target} is no longer a configured mirror directory")
        site = await self.site(recent=INCIDENT_LIMIT)
        files = render_site(site, incident_ids={job.incident.id}, history_days=self._settings.history_days)
        changed = await self._write(directory, files)
        return Receipt(detail=f"{changed} of {len(files)} files changed in {directory}")

    def preview(self, incident: Incident, update: Update) -> Preview:
        """Which pages change: every update re-renders the index, the incident's page, the feed and the API."""
        count = len(self._directories)
        kind = "maintenance" if incident.kind is Kind.MAINTENANCE else "incident"
        where = f"into {count} director{'ies' if count != 1 else 'y'}"
        return Preview(text=f"the status site: index, the {kind}'s page, history.atom and api/v2", note=where)

    async def render_all(self) -> list[CheckResult]:
        """Rebuild the whole site (every incident page) into every directory; one result per directory."""
        site = await self.site(recent=None)
        files = render_site(site, incident_ids=None, history_days=self._settings.history_days)
        results = []
        for name, directory in self._directories.items():
            try:
                changed = await self._write(directory, files)
            except (TransientError, PermanentError) as exc:
                results.append(CheckResult(name, False, str(exc)))
            else:
                results.append(CheckResult(name, True, f"{changed} of {len(files)} files changed"))
        return results

    async def site(self, *, recent: int | None) -> Site:
        histories = await self._journal.site_history(recent=recent)
        return build_site(
            histories,
            page_name=self._settings.page_title,
            public_url=self._public_url,
            configured_components=self._settings.components,
        )

    async def check(self) -> list[CheckResult]:
        results = []
        loop = asyncio.get_running_loop()
        for name, directory in self._directories.items():
            try:
                await loop.run_in_executor(self._executor, probe, directory)
            except OSError as exc:
                results.append(CheckResult(name, False, f"not writable: {exc.strerror or exc}"))
            else:
                results.append(CheckResult(name, True, "writable, atomic rename works"))
        return results

    async def aclose(self) -> None:
        # Never wait for a thread stuck on a hung mount; it ends when the mount answers or the process exits.
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _write(self, directory: Path, files: dict[str, bytes]) -> int:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, write_tree, directory, files)
        except OSError as exc:
            reason = f"cannot write {exc.filename or directory}: {exc.strerror or exc}"
            if exc.errno in _PERMANENT_ERRNOS:
                raise PermanentError(reason) from None
            raise TransientError(reason) from None
