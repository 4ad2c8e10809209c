"""The kit's journal copies on their own, without building a venv: a Redis journal exported into SQLite,
and the hard-bounce lists merged on refresh."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from broadcaster.domain.errors import ConflictError
from broadcaster.kit.build import merge_suppressions
from broadcaster.kit.journal import snapshot_local
from broadcaster.store import Accepted
from broadcaster.store.redis import RedisStore
from broadcaster.store.sqlite import SqliteStore
from tests.cli.test_kit import MANIFEST, incident_ids, post
from tests.support.journal import planned
from tests.support.journal import post as post_to


def test_merging_suppressions_compares_addresses_and_ends_each_line() -> None:
    given = "# from the service\nAnn@Example.org\t2024-05-01T10:00:00Z\t550 no user\nbob@example.org"
    kept = "ann@example.org\t2024-06-01T09:00:00Z\t550 again\ncat@example.org\t2024-06-01T09:00:00Z\t550\n"
    merged = merge_suppressions(given, kept)
    assert merged.splitlines() == [
        "# from the service",
        "Ann@Example.org\t2024-05-01T10:00:00Z\t550 no user",
        "bob@example.org",
        "cat@example.org\t2024-06-01T09:00:00Z\t550",
    ]
    assert merged.endswith("\n")
    assert merge_suppressions(merged, merged) == merged
    assert merge_suppressions("", "") == ""


def test_a_redis_journal_is_exported_with_its_manifests_and_idempotency_keys(tmp_path: Path, redis_url: str) -> None:
    """What `kit` does with a Redis journal, without the venv: an export into a new SQLite journal, where a
    request sent again with its idempotency key answers the update it made, and a key reused for another
    request is refused, as in the journal it came from."""
    (tmp_path / "broadcaster.toml").write_text(f'[store]\nurl = "{redis_url}"\n')
    incident = post(tmp_path, "Checkout errors")

    async def save() -> Accepted:
        store = RedisStore(redis_url)
        await store.open()
        try:
            await store.save_publish_manifest("publish:bucket", MANIFEST)
            return await post_to(store, planned(), key="deploy-4711", digest="sha-a", title="Deploy")
        finally:
            await store.close()

    keyed = asyncio.run(save())
    copy = tmp_path / "copy.db"
    snapshot_local(redis_url, copy, publish_targets=["publish:bucket", "publish:never-published"])
    assert incident_ids(copy) == {incident, keyed.incident.id}
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT target FROM publish_manifests").fetchall() == [("publish:bucket",)]
        delivered = conn.execute("SELECT channel, state FROM deliveries WHERE incident_id = ?", (incident,)).fetchall()
    assert delivered == [("mirror", "delivered")]

    async def send_again() -> None:
        store = SqliteStore(copy, url=f"sqlite:///{copy}")
        await store.open()
        try:
            again = await post_to(store, planned(), key="deploy-4711", digest="sha-a", title="Deploy")
            assert again.duplicate and again.update.id == keyed.update.id
            with pytest.raises(ConflictError, match="used for update"):
                await post_to(store, planned(), key="deploy-4711", digest="sha-b", title="Another")
        finally:
            await store.close()

    asyncio.run(send_again())
