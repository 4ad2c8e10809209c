"""The static-file status mirror: the whole status site, written into every configured directory.

It renders from the journal's latest state, never from the update in hand, so a late or repeated
render is never stale and rendering the same journal twice gives the same files. Files are written
by threads of the channel's own, so a hung network mount stalls this channel and nothing else."""

from __future__ import annotations

import asyncio
import errno
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Final, Self

from broadcaster.domain.models import Incident, Update
from broadcaster.domain.statuspage import INCIDENT_LIMIT, build_site
from broadcaster.domain.uptime import component_uptimes, window_start
from broadcaster.domain.vocabulary import Kind
from channels.base import (
    Channel,
    ChannelContext,
    CheckResult,
    Job,
    PermanentError,
    Preview,
    Receipt,
    SiteReader,
    TransientError,
)
from channels.mirror.files import probe, site_paths, write_tree
from channels.mirror.links import Rendered, with_linked_pages
from channels.mirror.pages import SiteContent, render_site
from channels.mirror.publish import Publishing
from config.mirror import MirrorSettings

_LEFT_PAUSED: Final = "paused: left as it is (`broadcaster resume mirror --target {target}`)"
# A path that exists as the wrong kind of thing will not fix itself by waiting.
_PERMANENT_ERRNOS: Final = {errno.ENOTDIR, errno.EISDIR}
_RENDERING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, asyncio.Lock]] = weakref.WeakKeyDictionary()


def _rendering_into(directory: Path) -> asyncio.Lock:
    """One render at a time into a directory, in this process (the lane's, and serve's own: site_renders),
    from its read of the journal to its last write, so an older render does not land after a newer one (but
    for a write cancelled by its time limit, whose thread finishes on its own)."""
    return _RENDERING.setdefault(asyncio.get_running_loop(), {}).setdefault(directory, asyncio.Lock())


class MirrorChannel(Channel):
    name = "mirror"

    def __init__(
        self,
        settings: MirrorSettings,
        *,
        public_url: str,
        journal: SiteReader,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        publishing: Publishing | None = None,
        subscribe_url: str = "",
    ) -> None:
        self._settings = settings
        self._public_url = public_url
        self._subscribe_url = subscribe_url
        self._journal = journal
        self._today = today
        """The render's UTC date, where the uptime bars end."""
        self._directories = {str(path): path for path in settings.directories}
        self._publishing = publishing or Publishing()
        """[[mirror.publish]] targets: each stages the site and sends it off the box (channels/mirror/publish)."""
        self._executor = ThreadPoolExecutor(
            max_workers=max(1, len(self._directories)), thread_name_prefix="broadcaster-mirror"
        )

    @classmethod
    def create(cls, context: ChannelContext) -> Self:
        settings, journal = context.settings, context.journal
        if not isinstance(journal, SiteReader):
            raise TypeError(
                f"the mirror renders from a journal with the site's reads; {type(journal).__name__} has not"
            )
        publishing = Publishing(
            settings.mirror.publish,
            data_dir=settings.service.data_dir,
            network=settings.network,
            journal=journal,
            render_timeout=settings.lane_policy(cls.name).timeout,
        )
        service = settings.service.public_url
        return cls(
            settings.mirror,
            public_url=settings.mirror.public_url,
            journal=journal,
            publishing=publishing,
            subscribe_url=f"{service}/subscribe" if service else "",
        )

    async def send(self, job: Job) -> Receipt:
        if job.target in self._publishing:
            return await self._publishing.publish(
                job.target, partial(self._staged, job.incident.id), deadline=job.deadline
            )
        directory = self._directories.get(job.target)
        if directory is None:
            raise PermanentError(
                f"{job.target} is not a mirror directory of this host: no longer configured, or another "
                "instance's (give every instance on a shared journal the same [mirror] directories)"
            )
        return Receipt(detail=await self._render_update(directory, job.incident.id))

    def preview(self, incident: Incident, update: Update) -> Preview:
        """Which pages change: every update re-renders the index, the incident's page, the feed and the API."""
        count = len(self._directories)
        kind = "maintenance" if incident.kind is Kind.MAINTENANCE else "incident"
        where = f"into {count} director{'ies' if count != 1 else 'y'}"
        return Preview(text=f"the status site: index, the {kind}'s page, history.atom and api/v2", note=where)

    async def render_all(self, *, paused: Collection[str] = ()) -> list[CheckResult]:
        """Rebuild the whole site (every incident page) into every directory and publish target but the
        `paused` ones (left as they are until resumed); one result per target."""
        results = await self.render_here(None, paused=paused)
        held = [
            CheckResult(target=name, ok=True, detail=_LEFT_PAUSED.format(target=name))
            for name in self._publishing.names()
            if name in paused
        ]
        # Each target renders again once it holds its lock: a process that took it later renders later.
        published = await self._publishing.render_all(partial(self._staged, None), skip=paused)
        return results + held + published

    async def render_here(
        self, incident_ids: Collection[str] | None, *, paused: Collection[str] = ()
    ) -> list[CheckResult]:
        """Into the directories (the publish targets are shared, and their deliveries keep them current): the
        whole site when `incident_ids` is None."""
        results = []
        for name, directory in self._directories.items():
            if name in paused:
                results.append(CheckResult(target=name, ok=True, detail=_LEFT_PAUSED.format(target=name)))
                continue
            # One directory at a time, each read and written under its own lock: a hung mount holds only itself.
            try:
                async with _rendering_into(directory):
                    if incident_ids is None:
                        pages = await self._journal.site_history(recent=None)
                        files = render_site(await self.content(), pages=pages, history_days=self._settings.history_days)
                        detail = f"{await self._write(directory, files)} of {len(files)} files changed"
                    else:
                        detail = await self._rendered_update(directory, list(incident_ids))
            except (TransientError, PermanentError) as exc:
                results.append(CheckResult(target=name, ok=False, detail=str(exc)))
            else:
                results.append(CheckResult(target=name, ok=True, detail=detail))
        return results

    async def _render_update(self, directory: Path, incident_id: str) -> str:
        """Render into `directory` what the latest update of `incident_id` changes; what was written."""
        async with _rendering_into(directory):
            return await self._rendered_update(directory, (incident_id,))

    async def _rendered_update(self, directory: Path, incident_ids: Sequence[str]) -> str:
        """What the latest updates of `incident_ids` change, in one render (the directory's lock held)."""
        if not incident_ids:
            return f"nothing to render in {directory}"
        first, *rest = incident_ids

        async def render(whole: bool, also: Sequence[str] = ()) -> Rendered:
            return await self._staged(first, whole, (*rest, *also))

        present = await asyncio.get_running_loop().run_in_executor(self._executor, site_paths, directory)
        rendered, _whole = await with_linked_pages(render, present)
        files = rendered.files
        changed = await self._write(directory, files)
        return f"{changed} of {len(files)} files changed in {directory}"

    async def _staged(self, incident_id: str | None, whole: bool, also: Sequence[str] = ()) -> Rendered:
        """For a publish target's staging copy: the whole site, or what an update of `incident_id` changes
        with the pages of the incidents `also` names."""
        content = await self.content()
        if whole or incident_id is None:
            pages = await self._journal.site_history(recent=None)
        else:
            pages = [await self._journal.history(one) for one in dict.fromkeys((incident_id, *also))]
        files = render_site(content, pages=pages, history_days=self._settings.history_days)
        return Rendered(files, revision_of(content))

    async def update_files(self, incident_id: str) -> dict[str, bytes]:
        """What an update of `incident_id` may change: its page and every file but the other incident pages."""
        return dict((await self._staged(incident_id, whole=False)).files)

    async def content(self) -> SiteContent:
        """Everything but the incident pages, from reads bounded by what the pages show: the open and the
        INCIDENT_LIMIT latest incidents, the history page's list, and the uptime window's component changes."""
        today = self._today()
        site = build_site(
            await self._journal.site_history(recent=INCIDENT_LIMIT),
            page_name=self._settings.page_title,
            public_url=self._public_url,
            configured_components=self._settings.components,
        )
        changes = await self._journal.component_updates(since=window_start(today))
        uptimes = component_uptimes(changes, [c.name for c in site.components], today=today)
        summaries = await self._journal.incident_summaries()
        return SiteContent(site, summaries, uptimes, today, subscribe_url=self._subscribe_url)

    async def check(self) -> list[CheckResult]:
        results = []
        loop = asyncio.get_running_loop()
        for name, directory in self._directories.items():
            try:
                await loop.run_in_executor(self._executor, probe, directory)
            except OSError as exc:
                results.append(CheckResult(target=name, ok=False, detail=f"not writable: {exc.strerror or exc}"))
            else:
                results.append(CheckResult(target=name, ok=True, detail="writable, atomic rename works"))
        return results + await self._publishing.check()

    async def aclose(self) -> None:
        # Never wait for a thread stuck on a hung mount; it ends when the mount answers or the process exits.
        self._executor.shutdown(wait=False, cancel_futures=True)
        await self._publishing.aclose()

    async def _write(self, directory: Path, files: Mapping[str, bytes]) -> int:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, write_tree, directory, files)
        except OSError as exc:
            reason = f"cannot write {exc.filename or directory}: {exc.strerror or exc}"
            if exc.errno in _PERMANENT_ERRNOS:
                raise PermanentError(reason) from None
            raise TransientError(reason) from None


def revision_of(content: SiteContent) -> str:
    """Orders renders by what they show: the journal's latest update, then the render's date (the uptime
    bars end on it). ISO 8601 in UTC, so the larger string is the newer site."""
    times = [content.site.updated_at, *(summary.updated_at for summary in content.summaries)]
    latest = max((moment for moment in times if moment is not None), default=None)
    shown = latest.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if latest else ""
    return f"{shown} {content.today.isoformat()}"
