"""The publish targets' manifests in the SQLite journal: one JSON row per target (path -> content hash)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping


def publish_manifest(conn: sqlite3.Connection, target: str) -> dict[str, str] | None:
    row = conn.execute("SELECT manifest FROM publish_manifests WHERE target = ?", (target,)).fetchone()
    if row is None:
        return None
    manifest: dict[str, str] = json.loads(row[0])
    return manifest


def save_publish_manifest(conn: sqlite3.Connection, target: str, manifest: Mapping[str, str], now: float) -> None:
    conn.execute(
        "INSERT INTO publish_manifests (target, manifest, saved_at) VALUES (?, ?, ?) "
        "ON CONFLICT (target) DO UPDATE SET manifest = excluded.manifest, saved_at = excluded.saved_at",
        (target, json.dumps(dict(manifest), separators=(",", ":"), sort_keys=True), now),
    )
