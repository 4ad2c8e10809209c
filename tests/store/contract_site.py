"""The store contract's records for the status site: the reads it renders from, and the publish targets'
manifests. The same behaviour from every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broadcaster.store import Store
from tests.support.journal import planned, post


class SiteContract:
    async def test_a_publish_manifest_is_kept_per_target_and_replaced_whole(self, journal: Store) -> None:
        assert await journal.publish_manifest("publish:s3-site") is None
        await journal.save_publish_manifest("publish:s3-site", {"index.html": "aa", "incidents/x.html": "bb"})
        await journal.save_publish_manifest("publish:git-pages", {"index.html": "cc"})
        await journal.save_publish_manifest("publish:s3-site", {"index.html": "dd"})
        assert await journal.publish_manifest("publish:s3-site") == {"index.html": "dd"}
        assert await journal.publish_manifest("publish:git-pages") == {"index.html": "cc"}
        await journal.save_publish_manifest("publish:git-pages", {})
        assert await journal.publish_manifest("publish:git-pages") == {}

    async def test_the_site_reads_cover_the_uptime_window_and_every_incident(self, journal: Store) -> None:
        """component_updates reads the incidents that counted at any time since `since` (still open, or
        updated since), with all their updates; incident_summaries lists every incident."""
        since = datetime.now(UTC) - timedelta(days=2)
        before = since - timedelta(days=30)
        done = await post(journal, planned(), at=before, components={"API": "major_outage"})
        await post(journal, planned(), at=before + timedelta(hours=1), incident_id=done.incident.id, status="resolved")
        lasting = await post(journal, planned(), at=before, title="Slow", components={"DB": "partial_outage"})
        late = await post(journal, planned(), at=before, title="Late", components={"API": "degraded_performance"})
        await post(journal, planned(), incident_id=late.incident.id, status="resolved", message="Over.")

        updates = await journal.component_updates(since=since)
        read = sorted((u.incident_id, u.seq, u.status.value) for u in updates)
        assert read == sorted(
            [
                (lasting.incident.id, 1, "investigating"),
                (late.incident.id, 1, "investigating"),
                (late.incident.id, 2, "resolved"),
            ]
        )
        first = next(u for u in updates if u.incident_id == lasting.incident.id)
        assert [(c.name, c.new.value) for c in first.components] == [("DB", "partial_outage")]
        assert first.created_at == lasting.update.created_at

        summaries = {s.id: s for s in await journal.incident_summaries()}
        assert set(summaries) == {done.incident.id, lasting.incident.id, late.incident.id}
        resolved = summaries[done.incident.id]
        assert (resolved.name, resolved.status.value, resolved.impact.value) == ("API errors", "resolved", "critical")
        assert resolved.started_at == done.incident.started_at
        assert resolved.resolved_at == before + timedelta(hours=1)
        assert summaries[lasting.incident.id].resolved_at is None
