"""Publishing to a second host over SFTP (asyncssh): key authentication, the host key pinned in known_hosts
(an unknown or changed key is refused), and each file written to a temporary name and renamed into place
(posix-rename, where the server offers it, replaces the old file in one step; elsewhere the old file is
renamed aside first and back should the new one not take its place, so a failure never loses it)."""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import secrets
from collections.abc import Awaitable
from typing import TypeVar

import asyncssh

from channels.base import PermanentError, TransientError
from config.publish import SftpTarget

T = TypeVar("T")
CLOSE_TIMEOUT: float = 5.0
"""Seconds to wait for the connection to close: a peer that never answers the close is left behind."""


class SftpRemote:
    def __init__(self, settings: SftpTarget) -> None:
        self.settings = settings
        self.concurrency = settings.concurrency
        self._connection: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._made: set[str] = set()
        self._leftovers: set[str] = set()
        """Temporary files a failed upload could not remove (its connection was lost): removed on the next."""
        self._opening = asyncio.Lock()

    async def put(self, path: str, content: bytes) -> None:
        sftp = await self._client()
        final = posixpath.join(self.settings.path, path)
        await self._directory(sftp, posixpath.dirname(final))
        temporary = _beside(final, "tmp")
        try:
            await self._write(sftp, temporary, content)
            await self._replace(sftp, temporary, final)
        except asyncssh.SFTPError as exc:  # an answer _bounded passes on, where it means a failed upload
            await self._discard(temporary)
            raise TransientError(f"{self.settings.host}: cannot put {path}: {exc.reason}") from None
        except BaseException:
            await self._discard(temporary)
            raise

    async def delete(self, path: str) -> None:
        sftp = await self._client()
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await self._bounded(sftp.remove(posixpath.join(self.settings.path, path)))

    async def check(self) -> str:
        """Writes and removes a probe file beside the site (never one of its files)."""
        sftp = await self._client()
        await self._directory(sftp, self.settings.path)
        probe = posixpath.join(self.settings.path, f".broadcaster-check-{secrets.token_hex(4)}")
        await self._write(sftp, probe, b"ok\n")
        await self._bounded(sftp.remove(probe))
        return f"{self.settings.host}: host key matches, key accepted, {self.settings.path} writable"

    async def aclose(self) -> None:
        sftp, connection = self._sftp, self._connection
        self._sftp = self._connection = None
        if sftp is not None:
            sftp.exit()
        if connection is not None:
            connection.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connection.wait_closed(), CLOSE_TIMEOUT)

    async def _write(self, sftp: asyncssh.SFTPClient, path: str, content: bytes) -> None:
        async def write() -> None:
            async with await sftp.open(path, "wb") as handle:
                await handle.write(content)

        await self._bounded(write())

    async def _replace(self, sftp: asyncssh.SFTPClient, temporary: str, final: str) -> None:
        try:
            await self._bounded(sftp.posix_rename(temporary, final))
            return
        except asyncssh.SFTPOpUnsupported:
            pass
        # Plain SFTP rename refuses to replace a file: the old one goes aside, and comes back should the new
        # one fail to take its place (a first upload has none to move).
        aside = _beside(final, "old")
        try:
            await self._bounded(sftp.rename(final, aside))
        except asyncssh.SFTPNoSuchFile:
            aside = ""
        try:
            await self._bounded(sftp.rename(temporary, final))
        except BaseException:
            if aside:
                with contextlib.suppress(Exception):
                    await self._bounded(sftp.rename(aside, final))
            raise
        if aside:
            await self._discard(aside)

    async def _discard(self, path: str) -> None:
        """Remove a temporary file now, or once connected again; never raises."""
        self._leftovers.add(path)
        if self._sftp is not None:
            with contextlib.suppress(Exception):
                await self._clear_leftovers(self._sftp)

    async def _client(self) -> asyncssh.SFTPClient:
        async with self._opening:
            if self._sftp is None:
                self._sftp = await self._connect()
                await self._clear_leftovers(self._sftp)
            return self._sftp

    async def _clear_leftovers(self, sftp: asyncssh.SFTPClient) -> None:
        for path in sorted(self._leftovers):
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await self._bounded(sftp.remove(path))
            self._leftovers.discard(path)

    async def _connect(self) -> asyncssh.SFTPClient:
        settings = self.settings
        try:
            self._connection = await asyncio.wait_for(
                asyncssh.connect(
                    settings.host,
                    settings.port,
                    username=settings.username,
                    client_keys=[str(settings.key_file)],
                    known_hosts=str(settings.known_hosts),
                    agent_path=None,
                    config=[],
                    connect_timeout=settings.timeout,
                ),
                settings.timeout,
            )
            return await self._bounded(self._connection.start_sftp_client())
        except asyncssh.HostKeyNotVerifiable as exc:
            raise PermanentError(
                f"{settings.host}: its host key is not the one in {settings.known_hosts}: {exc.reason}"
            ) from None
        except asyncssh.PermissionDenied:
            raise PermanentError(f"{settings.host}: the key in {settings.key_file} was refused") from None
        except (FileNotFoundError, asyncssh.KeyImportError) as exc:  # a config mistake: waiting cannot fix it
            await self.aclose()
            reason = "does not exist" if isinstance(exc, FileNotFoundError) else f"is not a usable key ({exc})"
            raise PermanentError(f"key_file {settings.key_file} (or known_hosts) {reason}") from None
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            await self.aclose()
            raise TransientError(f"{settings.host}:{settings.port}: {type(exc).__name__}: {exc}") from None

    async def _directory(self, sftp: asyncssh.SFTPClient, directory: str) -> None:
        if directory not in self._made:
            await self._bounded(sftp.makedirs(directory, exist_ok=True))
            self._made.add(directory)

    async def _bounded(self, step: Awaitable[T]) -> T:
        """`step` within the timeout; asyncssh's errors as DeliveryError, but the answers callers handle."""
        try:
            return await asyncio.wait_for(step, self.settings.timeout)
        except (asyncssh.SFTPOpUnsupported, asyncssh.SFTPNoSuchFile):
            raise
        except asyncssh.SFTPPermissionDenied as exc:
            raise PermanentError(f"{self.settings.host}: permission denied: {exc.reason}") from None
        except (TimeoutError, asyncssh.SFTPError, asyncssh.Error, OSError) as exc:
            await self.aclose()  # the next attempt starts on a fresh connection
            raise TransientError(f"{self.settings.host}: {type(exc).__name__}: {exc or 'timed out'}") from None


def _beside(final: str, purpose: str) -> str:
    """A hidden name in `final`'s directory (the site's readers never link to it)."""
    return posixpath.join(posixpath.dirname(final), f".{posixpath.basename(final)}.{purpose}-{secrets.token_hex(4)}")
