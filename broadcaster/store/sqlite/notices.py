"""Notices between the processes of one host that share a SQLite journal, so that a running service acts at
once on what another process did instead of at its next poll or sweep.

Each process that follows the journal (`serve`) binds a Unix datagram socket in a directory of its own user's
named after the journal file (NOTICE_ROOT/<hash of the journal's path>/<pid>). A process that journals new
work (an accepted update, a requeue, leases handed back) sends "work" to every socket there, "controls" for
a pause or resume, and "holder <owner>" once when it takes leases. A follower wakes its lanes on "work" (and
has them read the pauses again on "controls"), and watches each holder
of this host through a pidfd: when that process ends, whatever it held is taken back at once (rather than at
the next sweep), however it ended. Sending never blocks and never fails an operation: with nobody listening,
or a socket gone stale, the notice is simply not heard and polling finds the work as before."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Final

from broadcaster.store.owners import local_pid

log = logging.getLogger("broadcaster.journal")

NOTICE_ROOT: Final = Path(tempfile.gettempdir()) / f"broadcaster-{os.getuid()}"
"""Short on purpose: a Unix socket's path may not exceed 107 bytes, and a journal's may be long."""
WORK: Final = b"work"
CONTROLS: Final = b"controls"
HOLDER: Final = b"holder "


def notice_directory(journal: Path) -> Path:
    digest = hashlib.sha256(str(journal.resolve()).encode()).hexdigest()[:16]
    return NOTICE_ROOT / digest


def announce(directory: Path, message: bytes) -> None:
    """Send `message` to every process following the journal; never blocks, never raises."""
    try:
        sockets = [entry.path for entry in os.scandir(directory) if entry.name.endswith(".sock")]
    except OSError:
        return  # nobody has ever followed this journal here
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        for path in sockets:
            if path == _own_socket(directory):
                continue
            try:
                sender.sendto(message, path)
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(OSError):  # its process is gone without removing it
                    os.unlink(path)
            except OSError:
                pass  # its queue is full (it is awake already) or it cannot be reached: polling covers it


def _own_socket(directory: Path) -> str:
    return str(directory / f"{os.getpid()}.sock")


class ExitWatch:
    """Calls `on_exit` when a watched process of this host ends (Linux pidfds; elsewhere, watches nothing
    and the sweep takes the leases back when they run out)."""

    def __init__(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._watched: dict[int, int] = {}
        """pid -> its pidfd."""

    def watch(self, owners: Iterable[str]) -> None:
        loop = asyncio.get_running_loop()
        for owner in owners:
            pid = local_pid(owner)
            if pid is None or pid in self._watched:
                continue
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:  # gone already
                self._on_exit()
                continue
            except (AttributeError, OSError) as exc:  # no pidfds here: the sweep will do
                log.debug("cannot watch process %d: %s", pid, exc)
                continue
            self._watched[pid] = fd
            loop.add_reader(fd, self._exited, pid)

    def _exited(self, pid: int) -> None:
        fd = self._watched.pop(pid)
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        self._on_exit()

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for fd in self._watched.values():
            loop.remove_reader(fd)
            os.close(fd)
        self._watched.clear()


@contextlib.asynccontextmanager
async def follow(
    directory: Path,
    *,
    holders: Iterable[str],
    on_work: Callable[[], None],
    on_controls: Callable[[], None],
    on_holder_gone: Callable[[], None],
) -> AsyncIterator[None]:
    """While inside: `on_work` for each "work" notice, `on_controls` for each "controls" (a pause or resume),
    `on_holder_gone` when a process of this host that held leases (`holders` now, or announced later) ends."""
    receiver = _listening_socket(directory)
    if receiver is None:
        yield
        return
    exits = ExitWatch(on_holder_gone)
    exits.watch(holders)

    def readable() -> None:
        while True:
            try:
                message = receiver.recv(512)
            except BlockingIOError:
                return
            if message == WORK:
                on_work()
            elif message == CONTROLS:
                on_controls()
            elif message.startswith(HOLDER):
                exits.watch([message.removeprefix(HOLDER).decode(errors="replace")])

    loop = asyncio.get_running_loop()
    loop.add_reader(receiver.fileno(), readable)
    try:
        yield
    finally:
        loop.remove_reader(receiver.fileno())
        exits.close()
        receiver.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_own_socket(directory))


def _listening_socket(directory: Path) -> socket.socket | None:
    """This process's socket in `directory`, bound; None when the place is not this user's own."""
    try:
        NOTICE_ROOT.mkdir(mode=0o700, exist_ok=True)
        if NOTICE_ROOT.stat().st_uid != os.getuid():  # another user made it first: not a place to listen in
            log.warning("not following other processes' notices: %s belongs to another user", NOTICE_ROOT)
            return None
        directory.mkdir(mode=0o700, exist_ok=True)
        path = _own_socket(directory)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a socket this pid left in an earlier life
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            receiver.setblocking(False)
            receiver.bind(path)
        except OSError:
            receiver.close()
            raise
    except OSError as exc:  # polling and the sweep still find everything, later
        log.warning("not following other processes' notices (%s): new work is found by polling", exc)
        return None
    return receiver
