"""Each publish target's local copy of the whole site, under <data_dir>/publish/<name>/site.

A target renders into its own copy (the whole site the first time, then what each update changes) and
publishes from it, so what it sends never depends on a directory someone else may edit or a render of
another target. `complete` marks a copy that has had its full render; `destination` names the place the
copy (and a git target's repository beside it) was published to."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from channels.mirror.files import write_atomically, write_tree

LOCK_POLL: float = 0.05


class Staging:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.site = root / "site"
        self._complete = root / "complete"

    @property
    def complete(self) -> bool:
        return self._complete.exists()

    def restart(self) -> None:
        """The next publish renders the whole site into the copy."""
        self._complete.unlink(missing_ok=True)

    def claim(self, destination: str) -> None:
        """Keep the copy for `destination`; a copy kept for another place starts over: a whole render, and
        no repository (git) made for the old place. Raises OSError."""
        self.root.mkdir(parents=True, exist_ok=True)
        recorded = self.root / "destination"
        if recorded.exists() and recorded.read_text() == destination:
            return
        self.restart()
        shutil.rmtree(self.root / "git", ignore_errors=True)
        write_atomically(recorded, destination.encode())

    def write(self, files: Mapping[str, bytes], *, whole: bool) -> int:
        """Write `files` into the copy; with `whole`, `files` is the entire site: anything else is removed
        and the copy marked complete. Returns how many files changed. Raises OSError."""
        self.site.mkdir(parents=True, exist_ok=True)
        changed = write_tree(self.site, files)
        if whole:
            for path in sorted(set(self.paths()) - set(files)):
                (self.site / path).unlink()
                changed += 1
            write_atomically(self._complete, b"")
        return changed

    def paths(self) -> list[str]:
        """Every file of the copy, relative, with "/" separators (temporary files left by a crash skipped)."""
        found = []
        for directory, _dirs, names in os.walk(self.site):
            for name in names:
                if not name.startswith("."):
                    found.append(Path(directory, name).relative_to(self.site).as_posix())
        return sorted(found)

    def read(self) -> dict[str, bytes]:
        return {path: (self.site / path).read_bytes() for path in self.paths()}

    @contextlib.asynccontextmanager
    async def locked(self, *, until: float) -> AsyncIterator[None]:
        """Hold the target's lock (one publish at a time, whatever the process: the service and a `render`),
        waiting for it until the epoch time `until`. Raises TimeoutError, or OSError."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.time() >= until:
                        raise TimeoutError("another process is publishing to this target") from None
                    await asyncio.sleep(LOCK_POLL)
            yield
        finally:
            os.close(handle)  # closing releases the lock
