"""How the kit's build reports: one line per step on stderr as it goes, and a failure that names its step."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, TextIO

from broadcaster.domain.text import printable

BAD_INPUT: Final = 2
FAILED: Final = 1


class KitError(Exception):
    """A step of the kit cannot be done. `code`: BAD_INPUT when what the user gave is wrong (the directory,
    a URL, a token), FAILED when something else went wrong."""

    def __init__(self, message: str, *, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


class Progress:
    """Numbered steps: "kit [2/7] snapshot of the journal ... done: 48 KiB (0.1 s)"."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.failed_step = ""
        self._stream = stream or sys.stderr
        self._started = time.monotonic()

    @contextmanager
    def step(self, what: str) -> Iterator[list[str]]:
        """Announce `what`; the caller may append a short result to the yielded list. A KitError (or any
        other) raised inside finishes the line with "failed" and records the step's name."""
        self.done += 1
        print(f"kit [{self.done}/{self.total}] {what} ...", end="", file=self._stream, flush=True)
        result: list[str] = []
        started = time.monotonic()
        try:
            yield result
        except BaseException:
            print(" failed", file=self._stream, flush=True)
            self.failed_step = what
            raise
        shown = f": {printable(' '.join(result))}" if result else ""
        print(f" done{shown} ({time.monotonic() - started:.1f} s)", file=self._stream, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self._started
