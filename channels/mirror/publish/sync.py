"""Bringing a file store (a bucket, an SFTP directory) up to the site: the plan's uploads tier by tier,
each tier in parallel, then its deletions, in batches whose progress is saved as each ends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from channels.mirror.publish.manifest import Plan

Progress = Callable[[Sequence[str]], Awaitable[None]]
"""Told the paths of each batch the remote now has (uploaded, or deleted)."""


class Remote(Protocol):
    """A store of files addressed by path relative to the site's root. Methods raise DeliveryError."""

    concurrency: int

    async def put(self, path: str, content: bytes) -> None:
        """Replace `path` whole: a reader sees the old content or the new, never a part."""
        ...

    async def delete(self, path: str) -> None:
        """Remove `path`; a path already gone is not an error."""
        ...

    async def check(self) -> str:
        """Prove the store reachable, the credentials accepted and the place writable, leaving the published
        site as it was; say so in a short detail."""
        ...

    async def aclose(self) -> None: ...


class Publisher(Protocol):
    """How one kind of target takes a publish (sync.FilesPublisher for file stores, git's own for git)."""

    async def publish(self, site: Path, files: Mapping[str, bytes], work: Plan, progress: Progress) -> None: ...

    async def check(self) -> str: ...

    async def aclose(self) -> None: ...


class FilesPublisher:
    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    async def publish(self, site: Path, files: Mapping[str, bytes], work: Plan, progress: Progress) -> None:
        uploads = set(work.uploads)
        for batch in work.batches(self.remote.concurrency):
            await each(self.remote.concurrency, batch, lambda path: self._bring(path, files, uploads))
            await progress(batch)

    async def _bring(self, path: str, files: Mapping[str, bytes], uploads: set[str]) -> None:
        await (self.remote.put(path, files[path]) if path in uploads else self.remote.delete(path))

    async def check(self) -> str:
        return await self.remote.check()

    async def aclose(self) -> None:
        await self.remote.aclose()


async def each(limit: int, paths: Iterable[str], action: Callable[[str], Awaitable[None]]) -> None:
    """`action` for every path, at most `limit` at once. The first failure stops the rest and is raised."""
    semaphore = asyncio.Semaphore(limit)

    async def one(path: str) -> None:
        async with semaphore:
            await action(path)

    try:
        async with asyncio.TaskGroup() as group:
            for path in paths:
                group.create_task(one(path))
    except BaseExceptionGroup as failed:
        raise _first(failed) from None


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
