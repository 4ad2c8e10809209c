"""An older journal opened by this build is migrated in place, in one transaction, keeping its data.

Older journals are made from a current one by undoing the later versions' changes (AS_VERSION_10 down to
AS_VERSION_4 and the version's own steps), the way each of those versions left the file."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broadcaster.store.sqlite import SqliteStore
from broadcaster.store.sqlite.queue import LEASES
from broadcaster.store.sqlite.schema import SCHEMA_VERSION
from tests.support.journal import claim, planned, post

AS_VERSION_10 = "DROP TABLE revoked_sessions; DROP TABLE redeemed;"
"""Undoes version 11: no web sessions in the journal."""
AS_VERSION_9 = AS_VERSION_10 + "DROP TABLE publish_manifests;"
"""Undoes versions 11 and 10: no publish manifests either."""
AS_VERSION_8 = AS_VERSION_9 + "DROP TABLE subscribers;"
"""Undoes versions 11 to 9: no subscribers in the journal."""
AS_VERSION_7 = AS_VERSION_8 + (
    "DROP TABLE idempotency_keys; DROP INDEX updates_content; ALTER TABLE updates DROP COLUMN content_digest;"
)
"""Undoes versions 9 and 8: no content digests of updates, no idempotency keys beyond each update's own."""
AS_VERSION_6 = AS_VERSION_7 + "DROP INDEX incidents_due;"
"""Undoes versions 9 to 7: no index of open incidents by their next update either."""
AS_VERSION_5 = AS_VERSION_6 + "DROP TABLE suppressions; ALTER TABLE updates DROP COLUMN request_digest;"
"""Undoes versions 9 to 6: no suppressions in the journal, no request digests."""
AS_VERSION_4 = AS_VERSION_5 + (
    "DROP INDEX deliveries_progress; DROP TABLE progress; ALTER TABLE deliveries DROP COLUMN has_progress;"
    "ALTER TABLE deliveries ADD COLUMN progress TEXT NOT NULL DEFAULT '{}';"
)
"""Undoes versions 9 to 5: progress back in one JSON column per delivery."""


async def test_version_4_progress_moves_to_rows_and_is_pruned_as_it_would_be(tmp_path: Path) -> None:
    """What an open email delivery had saved comes along (a retry still skips those recipients); what a
    delivered one had accepted is pruned, its refusals kept."""
    path = tmp_path / "v4.db"
    journal = SqliteStore(path, url="sqlite:///v4.db")
    await journal.open()
    await post(journal, planned("open", "done"))
    await journal.close()
    saved = {"accepted": ["a@example.com", "b@example.com"], "refused": {"c@example.com": "550 no such user"}}
    with sqlite3.connect(path) as conn:
        conn.executescript(AS_VERSION_4 + "PRAGMA user_version = 4;")
        conn.execute("UPDATE deliveries SET progress = ?", (json.dumps(saved),))
        conn.execute("UPDATE deliveries SET state = 'delivered', finished_at = 1 WHERE target = 'done'")
    reopened = SqliteStore(path, url="sqlite:///v4.db")
    await reopened.open()
    try:
        (claimed,) = (
            await reopened.claim(
                "scripted", ordering=planned()[0].ordering, owner="me", limit=5, now=time.time(), lease=60
            )
        ).claimed
        assert claimed.delivery.target == "open"
        assert claimed.progress == {"a@example.com": "", "b@example.com": "", "c@example.com": "550 no such user"}
        await reopened.expire_due(now=time.time())  # a sweep prunes what can no longer be attempted
    finally:
        await reopened.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT d.target, p.key, p.note FROM progress p JOIN deliveries d ON d.id = p.delivery_id "
            "ORDER BY d.target, p.key"
        ).fetchall()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert rows == [
        ("done", "c@example.com", "550 no such user"),
        ("open", "a@example.com", ""),
        ("open", "b@example.com", ""),
        ("open", "c@example.com", "550 no such user"),
    ]
    assert version == SCHEMA_VERSION


async def test_version_4_progress_of_other_channels_and_of_refusals_alone_comes_along(tmp_path: Path) -> None:
    """X's progress (the text's digest and the post id, which keep a retry from posting twice) and email
    progress holding only refusals reach the next attempt after the upgrade, as they would have before it."""
    path = tmp_path / "v4.db"
    journal = SqliteStore(path, url="sqlite:///v4.db")
    await journal.open()
    await post(journal, planned("x", "mail"))
    await journal.close()
    with sqlite3.connect(path) as conn:
        conn.executescript(AS_VERSION_4 + "PRAGMA user_version = 4;")
        x_saved = {"text": "3f1c9a", "post_id": "1790000000000000001"}
        conn.execute("UPDATE deliveries SET progress = ? WHERE target = 'x'", (json.dumps(x_saved),))
        refused_only = {"accepted": [], "refused": {"c@example.com": "550 no such user"}}
        conn.execute("UPDATE deliveries SET progress = ? WHERE target = 'mail'", (json.dumps(refused_only),))
    reopened = SqliteStore(path, url="sqlite:///v4.db")
    await reopened.open()
    try:
        leased = await reopened.claim(
            "scripted", ordering=planned()[0].ordering, owner="me", limit=5, now=time.time(), lease=60
        )
    finally:
        await reopened.close()
    progress = {c.delivery.target: dict(c.progress) for c in leased.claimed}
    assert progress == {"x": x_saved, "mail": {"c@example.com": "550 no such user"}}


async def test_a_version_1_journal_is_migrated_in_place(tmp_path: Path) -> None:
    """An existing journal keeps its data and gets the current indexes."""
    path = tmp_path / "old.db"
    journal = SqliteStore(path, url="sqlite:///old.db")
    await journal.open()
    accepted = await post(journal, planned())
    await journal.close()
    with sqlite3.connect(path) as conn:  # make it look like a version 1 journal
        conn.executescript(
            AS_VERSION_4 + "DROP INDEX deliveries_due; DROP INDEX deliveries_open;"
            "DROP INDEX deliveries_thread;"
            "CREATE INDEX deliveries_queue ON deliveries (channel, state, not_before);"
            "CREATE INDEX deliveries_order ON deliveries (channel, target, state, seq);"
            "CREATE INDEX deliveries_thread ON deliveries (incident_id, channel, target, state);"
            "PRAGMA user_version = 1;"
        )
    reopened = SqliteStore(path, url="sqlite:///old.db")
    await reopened.open()
    try:
        assert [d.id for d in await reopened.deliveries(open_only=True)] == [accepted.deliveries[0].id]
        assert await claim(reopened) == [accepted.deliveries[0].id]
    finally:
        await reopened.close()
    with sqlite3.connect(path) as conn:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert {"deliveries_due", "deliveries_open", "deliveries_thread", "deliveries_failed"} <= indexes
    assert not {"deliveries_queue", "deliveries_order", "deliveries_leased"} & indexes
    assert version == SCHEMA_VERSION


async def test_a_version_2_journal_loses_the_lease_index_and_keeps_its_leases(tmp_path: Path) -> None:
    """Version 3 drops the index on leases; a lease taken before the upgrade is still recovered, and
    recovery reads open deliveries through an index rather than scanning the whole history."""
    path = tmp_path / "v2.db"
    journal = SqliteStore(path, url="sqlite:///v2.db")
    await journal.open()
    accepted = await post(journal, planned())
    assert await claim(journal, owner="gone:1") == [accepted.deliveries[0].id]
    await journal.close()
    with sqlite3.connect(path) as conn:  # as version 2 left it
        conn.executescript(
            AS_VERSION_4 + "CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'in_flight';"
            "PRAGMA user_version = 2;"
        )
    reopened = SqliteStore(path, url="sqlite:///v2.db")
    await reopened.open()
    try:
        recovered = await reopened.recover(now=time.time(), owner_is_dead=lambda owner: owner == "gone:1")
        assert [d.id for d in recovered] == [accepted.deliveries[0].id]
    finally:
        await reopened.close()
    with sqlite3.connect(path) as conn:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        plan = conn.execute(f"EXPLAIN QUERY PLAN {LEASES}").fetchall()
    assert "deliveries_leased" not in indexes
    assert "USING INDEX deliveries_open" in plan[0][-1]


async def test_a_version_6_journal_finds_its_overdue_incidents_through_the_new_index(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    journal = SqliteStore(path, url="sqlite:///v6.db")
    await journal.open()
    due = datetime.now(UTC) + timedelta(minutes=5)
    accepted = await post(journal, planned(), next_update_at=due)
    await journal.close()
    with sqlite3.connect(path) as conn:
        conn.executescript(AS_VERSION_6 + "PRAGMA user_version = 6;")
    reopened = SqliteStore(path, url="sqlite:///v6.db")
    await reopened.open()
    try:
        overdue = await reopened.overdue(now=due + timedelta(seconds=1), limit=5)
        assert [incident.id for incident in overdue] == [accepted.incident.id]
    finally:
        await reopened.close()
    with sqlite3.connect(path) as conn:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert "incidents_due" in indexes
    assert version == SCHEMA_VERSION


async def test_a_version_7_journal_gets_content_digests_for_its_new_updates(tmp_path: Path) -> None:
    """A journal made by the build that first had version 7: updates it holds have no digest (nothing
    matches them), new ones do, and the same content within the window is answered by the first."""
    path = tmp_path / "v7.db"
    journal = SqliteStore(path, url="sqlite:///v7.db")
    await journal.open()
    old = await post(journal, planned())
    await journal.close()
    make_older(path, AS_VERSION_7, version=7)
    reopened = SqliteStore(path, url="sqlite:///v7.db")
    await reopened.open()
    try:
        first = await post(reopened, planned(), same_within=60)  # the same content as `old`, which has no digest
        again = await post(reopened, planned(), same_within=60, key="k")
        assert first.update.id != old.update.id
        assert again.duplicate and again.update.id == first.update.id
    finally:
        await reopened.close()
    assert schema_version(path) == SCHEMA_VERSION


async def test_a_version_10_journal_gets_the_web_sessions_tables(store: SqliteStore) -> None:
    """A journal from before sessions were shared keeps its updates, and takes logouts and login links."""
    accepted = await post(store, planned())
    await store.close()
    make_older(store.path, AS_VERSION_10, version=10)
    await store.open()  # the fixture closes it again
    now = time.time()
    await store.revoke_session("s-1", until=now + 60)
    assert await store.session_revoked("s-1", now=now)
    assert await store.redeem_once("login-link", "n-1", now=now, until=now + 60)
    assert (await store.update(accepted.update.id)).message == "An update."
    assert schema_version(store.path) == SCHEMA_VERSION


def make_older(path: Path, undo: str, *, version: int) -> None:
    """Make the journal at `path` what `version` left, by `undo`ing the later versions' changes."""
    with sqlite3.connect(path) as conn:
        conn.executescript(f"{undo}PRAGMA user_version = {version};")


def schema_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version
