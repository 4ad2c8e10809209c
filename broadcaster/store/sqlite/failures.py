"""Telling a journal that cannot be written (exit 4: the disk, not the user) from one that cannot be used
as configured (exit 2: a wrong path, a newer schema, a file that is not a journal)."""

from __future__ import annotations

import errno
import sqlite3
from typing import Final

from broadcaster.domain.errors import JournalWriteError, StoreError

# SQLITE_FULL: "database or disk is full". SQLITE_IOERR and its extended codes: a read or write the operating
# system refused, as SQLite reports ENOSPC on a short write as FULL and any other failed write (EFBIG under a
# file-size limit, EIO, EDQUOT) as SQLITE_IOERR_WRITE.
_WRITE_FAILURES: Final = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR})
_OS_WRITE_FAILURES: Final = frozenset({errno.ENOSPC, errno.EFBIG, errno.EIO, errno.EDQUOT})


def journal_error(message: str, exc: sqlite3.Error | OSError) -> StoreError:
    """`message` as the StoreError to raise for `exc`: a JournalWriteError when the disk refused a write."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        cannot_write = code is not None and code & 0xFF in _WRITE_FAILURES
    else:
        cannot_write = exc.errno in _OS_WRITE_FAILURES
    return JournalWriteError(message) if cannot_write else StoreError(message)
