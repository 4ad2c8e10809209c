"""Journal backends behind one interface, chosen by URL; a backend's module is imported only when used."""

from __future__ import annotations

from pathlib import Path

from broadcaster.domain.errors import StoreError
from broadcaster.store.base import (
    Accepted,
    Attempt,
    Claimed,
    ClaimResult,
    Delivery,
    Handoff,
    LaneControl,
    Outcome,
    PlannedDelivery,
    Standing,
    Store,
)


def open_store(url: str) -> Store:
    """The store for `url`: sqlite:///relative.db, sqlite:////absolute.db, redis://host:port/db or rediss://
    (not yet opened)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise StoreError(f"store url {_shown(url)!r} has no scheme; use sqlite:///path.db")
    if scheme == "sqlite":
        from broadcaster.store.sqlite import SqliteStore

        if not rest.startswith("/") or rest == "/":
            raise StoreError(f"store url {url!r}: expected sqlite:///relative/path.db or sqlite:////abs/path.db")
        return SqliteStore(Path(rest[1:]), url=url)
    if scheme in ("redis", "rediss"):
        from broadcaster.store.redis import RedisStore

        return RedisStore(url)
    raise StoreError(
        f"store url {_shown(url)!r}: unsupported scheme {_shown(scheme)!r} (supported: sqlite, redis, rediss)"
    )


def _shown(url: str) -> str:
    """`url` for an error message: whatever comes before an "@" may be a password, even in a malformed URL."""
    if "@" not in url:
        return url
    before, _, host = url.rpartition("@")
    scheme, sep, _credentials = before.partition("://")
    return f"{scheme}{sep}***@{host}" if sep else f"***@{host}"


__all__ = [
    "Accepted",
    "Attempt",
    "ClaimResult",
    "Claimed",
    "Delivery",
    "Handoff",
    "LaneControl",
    "Outcome",
    "PlannedDelivery",
    "Standing",
    "Store",
    "open_store",
]
