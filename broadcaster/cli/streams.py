"""Standard output and error for a reader that may stop reading: `broadcaster status | head -1`.

A closed pipe is not an error. Once the reader has gone, whatever the command still prints is dropped and
the command finishes and exits as it would have: status with 0, and send with 0 or 3, its update journaled
and delivered all the same. Without this, the first write after `head` exits raises BrokenPipeError out of
the middle of the command, and the interpreter's last flush prints a traceback."""

from __future__ import annotations

import os
import select
import sys
from typing import Any, TextIO, cast


class _ReaderMayLeave:
    """Wraps a standard stream; every attribute but write and flush is the stream's own."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._gone = False

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._reader_left()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._reader_left()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _reader_left(self) -> None:
        self._gone = True
        # The stream still holds what it could not write, and the interpreter flushes it once more on the
        # way out: pointing its file descriptor at /dev/null lets that flush succeed quietly.
        try:
            fd = self._stream.fileno()
        except (OSError, ValueError):  # not backed by a file descriptor: nothing will flush to a pipe
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def write_or_drop(stream: TextIO, text: str) -> bool:
    """Write `text` (a line or a redraw, well under a pipe's 4 KiB page) and flush it, unless the reader has
    stopped reading and the pipe is full: then drop it (False) rather than block, since a blocked write would
    stop the event loop and every lane with it. A terminal or a file never fills: they are written as usual."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, AttributeError):  # not backed by a file descriptor (a test's StringIO)
        fd = None
    if fd is not None:
        try:
            _readable, writable, _errors = select.select([], [fd], [], 0)
        except (OSError, ValueError):
            writable = [fd]
        if not writable:
            return False
    stream.write(text)
    stream.flush()
    return True


def tolerate_closed_pipes() -> None:
    """Wrap sys.stdout and sys.stderr (once; calling it again changes nothing)."""
    if not isinstance(sys.stdout, _ReaderMayLeave):
        sys.stdout = cast(TextIO, _ReaderMayLeave(sys.stdout))
    if not isinstance(sys.stderr, _ReaderMayLeave):
        sys.stderr = cast(TextIO, _ReaderMayLeave(sys.stderr))
