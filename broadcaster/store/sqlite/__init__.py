"""The embedded SQLite journal: the store (journal.py), its operations (ops.py) and its schema (schema.py)."""

from broadcaster.store.sqlite.journal import SqliteStore

__all__ = ["SqliteStore"]
