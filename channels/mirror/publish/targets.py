"""Every [[mirror.publish]] target of the mirror lane: its staging copy, its manifest in the journal, and
its publisher, built (and its client library imported) on the target's first use."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from channels.base import CheckResult, DeliveryError, PublishManifests, Receipt, TransientError
from channels.mirror import links
from channels.mirror.links import Render, Rendered
from channels.mirror.publish import manifest
from channels.mirror.publish.staging import Staging
from channels.mirror.publish.sync import Publisher
from config.publish import GitTarget, S3Target, SftpTarget, target_name
from config.sections import NetworkSettings

Settings = S3Target | GitTarget | SftpTarget
T = TypeVar("T")


def _publisher(settings: Settings, staging: Staging, network: NetworkSettings) -> Publisher:
    # Each kind's client library loads only when a target of that kind is used.
    if isinstance(settings, S3Target):
        from channels.mirror.publish.s3 import S3Remote
        from channels.mirror.publish.sync import FilesPublisher

        return FilesPublisher(S3Remote(settings, network))
    if isinstance(settings, SftpTarget):
        from channels.mirror.publish.sftp import SftpRemote
        from channels.mirror.publish.sync import FilesPublisher

        return FilesPublisher(SftpRemote(settings))
    from channels.mirror.publish.git import GitPublisher

    return GitPublisher(settings, staging.root)


class Target:
    def __init__(self, settings: Settings, *, root: Path, network: NetworkSettings) -> None:
        self.settings = settings
        self.network = network
        self.name = target_name(settings)
        self.destination = manifest.fingerprint(settings.destination)
        self.staging = Staging(root)
        self._publisher: Publisher | None = None

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            self._publisher = _publisher(self.settings, self.staging, self.network)
        return self._publisher

    async def aclose(self) -> None:
        if self._publisher is not None:
            await self._publisher.aclose()


class Publishing:
    """The publish targets, by name (publish:<name>). A target publishes from its staging copy what differs
    from its manifest, holding its lock meanwhile, and saves the new manifest once the remote has it all."""

    def __init__(
        self,
        targets: Sequence[Settings] = (),
        *,
        data_dir: Path = Path("var"),
        network: NetworkSettings | None = None,
        journal: object = None,
        render_timeout: float = 60.0,
    ) -> None:
        root, network = data_dir / "publish", network or NetworkSettings()
        built = [Target(settings, root=root / settings.label, network=network) for settings in targets]
        self._targets = {target.name: target for target in built}
        self._render_timeout = render_timeout
        self._manifests = journal if isinstance(journal, PublishManifests) else None
        self._executor = ThreadPoolExecutor(max_workers=max(1, len(targets)), thread_name_prefix="broadcaster-publish")

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def names(self) -> list[str]:
        return list(self._targets)

    async def publish(
        self, name: str, render: Render, *, deadline: float = float("inf"), whole: bool = False
    ) -> Receipt:
        """Stage what `render` gives (the whole site with `whole`, or while the staging copy is not complete)
        and publish it. Raises DeliveryError."""
        target = self._targets[name]
        try:
            async with target.staging.locked(until=min(deadline, time.time() + 3600)):
                await self._thread(lambda: target.staging.claim(target.destination))
                if whole:
                    target.staging.restart()
                rendered = await self._stage(target, render, whole=not target.staging.complete)
                return await self._sync(target, rendered.revision)
        except (OSError, TimeoutError) as exc:
            raise TransientError(f"{name}: {getattr(exc, 'strerror', None) or exc}") from None

    async def render_all(self, render: Render, *, skip: Collection[str] = ()) -> list[CheckResult]:
        """The whole site to every target (but those in `skip`) at once, each within the lane's timeout: one
        result per target."""
        timeout = self._render_timeout

        async def one(target: Target) -> CheckResult:
            try:
                async with asyncio.timeout(timeout):
                    receipt = await self.publish(target.name, render, deadline=time.time() + timeout, whole=True)
            except DeliveryError as exc:
                return CheckResult(target=target.name, ok=False, detail=str(exc))
            except TimeoutError:
                return CheckResult(target=target.name, ok=False, detail=f"no answer within {timeout:g} s")
            return CheckResult(target=target.name, ok=True, detail=receipt.detail)

        chosen = [target for target in self._targets.values() if target.name not in skip]
        return list(await asyncio.gather(*(one(target) for target in chosen)))

    async def check(self) -> list[CheckResult]:
        async def one(target: Target) -> CheckResult:
            try:
                return CheckResult(target=target.name, ok=True, detail=await target.publisher.check())
            except DeliveryError as exc:
                return CheckResult(target=target.name, ok=False, detail=str(exc))

        return list(await asyncio.gather(*(one(target) for target in self._targets.values())))

    async def aclose(self) -> None:
        for target in self._targets.values():
            await target.aclose()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _stage(self, target: Target, render: Render, *, whole: bool) -> Rendered:
        """Render into the staging copy; an update's render also renders the pages its index (or history, or
        JSON) links to that the copy lacks, or, for a missing page that is no incident's, the whole site."""
        if whole:
            rendered = await render(True)
        else:
            rendered, whole = await links.with_linked_pages(render, set(await self._thread(target.staging.paths)))
        files = rendered.files
        await self._thread(lambda: target.staging.write(files, whole=whole))
        return rendered

    async def _sync(self, target: Target, revision: str) -> Receipt:
        files = await self._thread(target.staging.read)
        site = manifest.manifest_of(files)
        saved = await self._manifests.publish_manifest(target.name) if self._manifests else None
        held = manifest.held_by(saved, target.destination)
        if held is not None and held.revision > revision:
            return Receipt(detail=f"skipped: {target.name} already has a newer site (published by another process)")
        work = manifest.plan(site, held.files if held else None)
        record = manifest.in_progress(held.files if held else None, work)

        async def save(paths: Mapping[str, str]) -> None:
            if self._manifests is not None:
                stored = manifest.stored(paths, destination=target.destination, revision=revision)
                await self._manifests.save_publish_manifest(target.name, stored)

        async def progress(done: Sequence[str]) -> None:
            for path in done:
                if path in site:
                    record[path] = site[path]
                else:
                    record.pop(path, None)
            await save(record)

        if work:
            await save(record)
        await target.publisher.publish(target.staging.site, files, work, progress)  # git may have a push due
        if work or held is None or held.revision != revision:
            await save(site)
        return Receipt(
            detail=f"{len(work.uploads)} uploaded, {len(work.deletions)} deleted, {len(files)} files in the site"
        )

    async def _thread(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)
