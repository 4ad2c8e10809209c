"""A consistent copy of a live SQLite journal, for a fallback kit.

`VACUUM INTO` reads the whole journal in one read transaction, so the copy is the journal as it stood at one
moment, whatever other processes write meanwhile (WAL lets them go on), and it comes out compact and whole:
one file, no WAL beside it."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from broadcaster.domain.errors import StoreError
from broadcaster.store.sqlite.failures import journal_error

BUSY_TIMEOUT = 10.0
"""Seconds to wait for a writer that holds the journal's lock while the copy starts (a checkpoint, say)."""


def copy_journal(source: Path, destination: Path) -> None:
    """Write a consistent copy of the journal at `source` to `destination`, which must not exist yet. On
    failure, nothing is left at `destination`."""
    if not source.is_file():
        raise StoreError(f"no journal at {source} to copy")
    if destination.exists():
        raise StoreError(f"{destination} exists already; a copy goes to a new file")
    try:
        with contextlib.closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT, isolation_level=None)) as conn:
            conn.execute("VACUUM INTO ?", (str(destination),))
    except sqlite3.Error as exc:
        destination.unlink(missing_ok=True)
        raise journal_error(f"cannot copy the journal at {source} to {destination}: {exc}", exc) from None
