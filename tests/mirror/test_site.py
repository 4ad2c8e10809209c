"""The site as a whole: the same bytes from `send` and `render`, an update rewriting only the files it
changes, the history page, and the uptime bars with their text equivalent and uptime.json."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.models import IncidentHistory, UpdateDraft
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.site_renders import render_after_outages, render_each_day
from channels.base import ChannelContext
from channels.mirror import MirrorChannel
from config import load_settings
from tests.conftest import WriteConfig
from tests.mirror.helpers import journal_scenario, render
from tests.store.test_failover import redis_alone
from tests.support.helpers import eventually
from tests.support.redis import RedisServer

__all__ = ["redis_alone"]  # a fixture: a persistent redis-server of the test's own

API_FILES = {
    "api/v2/status.json",
    "api/v2/summary.json",
    "api/v2/components.json",
    "api/v2/incidents.json",
    "api/v2/incidents/unresolved.json",
    "api/v2/scheduled-maintenances.json",
    "api/v2/scheduled-maintenances/upcoming.json",
    "api/v2/scheduled-maintenances/active.json",
}


def snapshot(site: Path) -> dict[str, tuple[int, bytes]]:
    """Each file's inode (a rewrite renames a new file into place) and content."""
    return {str(p.relative_to(site)): (p.stat().st_ino, p.read_bytes()) for p in site.rglob("*") if p.is_file()}


async def send(runtime: Runtime, draft: UpdateDraft) -> None:
    """Submit `draft` and let the mirror lane deliver it, as `broadcaster send` does."""
    async with Dispatcher(runtime) as dispatcher:
        accepted = await runtime.submit(draft)
        dispatcher.wake()
        (delivery,) = await dispatcher.settle([accepted.update.id], wait=20)
    assert delivery.state is DeliveryState.DELIVERED, delivery.last_error


async def test_send_and_render_write_the_same_bytes(runtime: Runtime) -> None:
    ids = await journal_scenario(runtime)
    for n in range(60):  # more than the 50 incidents the API lists, so the two reads could differ
        await runtime.submit(UpdateDraft(title=f"Blip {n}", status="resolved", message="Gone."))
    await send(runtime, UpdateDraft(incident_id=ids["outage"], status="monitoring", message="A fix is out."))
    site = Path(str(runtime.settings.mirror.directories[0]))
    sent = snapshot(site)
    await render(runtime)
    rendered = snapshot(site)
    for path in ["index.html", "history.html", "uptime.json", "history.atom", *API_FILES]:
        assert rendered[path] == sent[path], path  # not rewritten: the same bytes


async def test_one_update_rewrites_only_the_files_it_changes(runtime: Runtime) -> None:
    ids = await journal_scenario(runtime)
    site = await render(runtime)
    before = snapshot(site)
    await send(runtime, UpdateDraft(incident_id=ids["outage"], status="monitoring", message="A fix is out."))
    after = snapshot(site)
    rewritten = {path for path in after if before.get(path, (None,))[0] != after[path][0]}
    expected = {f"incidents/{ids['outage']}.html", "index.html", "history.html", "history.atom", *API_FILES}
    assert rewritten == expected
    assert after[f"incidents/{ids['old']}.html"] == before[f"incidents/{ids['old']}.html"]


async def test_each_page_says_when_it_last_changed(runtime: Runtime) -> None:
    ids = await journal_scenario(runtime)
    site = await render(runtime)
    old = await runtime.store.incident(ids["old"])
    page = (site / "incidents" / f"{ids['old']}.html").read_text()
    stamp = old.updated_at.strftime("%d %b %Y, %H:%M UTC").lstrip("0")
    assert f"Last updated {stamp}." in page


async def test_the_history_page_lists_incidents_by_month_newest_first(runtime: Runtime) -> None:
    ids = await journal_scenario(runtime)
    site = await render(runtime)
    html = (site / "history.html").read_text()
    month = datetime.now(UTC).strftime("%B %Y")
    assert f"<h2>{month}</h2>" in html
    linked = re.findall(r'href="incidents/([0-9a-z]{12})\.html"', html)
    assert linked == [ids["maintenance"], ids["outage"], ids["old"]]
    assert "Resolved" in html and "Minor outage" in html
    assert 'href="history.html"' in (site / "index.html").read_text()


async def test_uptime_bars_end_on_the_render_date_with_a_text_equivalent(runtime: Runtime) -> None:
    await journal_scenario(runtime)
    today = datetime.now(UTC).date()
    site = await render(runtime)
    uptime = json.loads((site / "uptime.json").read_text())
    assert (uptime["date"], uptime["days"]) == (today.isoformat(), 90)
    by_name = {c["name"]: c for c in uptime["components"]}
    assert list(by_name) == ["API", "Dashboard", "Billing"]
    api = by_name["API"]
    assert set(api) == {"id", "name", "uptime_percent", "days"}
    assert len(api["days"]) == 90
    assert api["days"][-1]["date"] == today.isoformat()
    assert api["days"][-1]["worst_status"] == "partial_outage"
    assert api["days"][-1]["uptime"] < 1
    assert api["uptime_percent"] < 100
    assert by_name["Dashboard"]["days"][-1]["worst_status"] == "degraded_performance"

    html = (site / "index.html").read_text()
    assert html.count("<svg") == 3
    assert html.count("<rect") == 270
    assert "<script" not in html
    (labelled,) = re.findall(r'<svg[^>]*aria-labelledby="(uptime-1)"', html)
    summary = re.search(rf'<p class="visually-hidden" id="{labelled}">(.*?)</p>', html, re.DOTALL)
    assert summary is not None
    assert f"API: {api['uptime_percent']:.2f}% uptime over the last 90 days" in summary.group(1)
    assert "partial outage" in summary.group(1)


async def test_a_render_on_another_date_moves_only_the_date_dependent_files(runtime: Runtime) -> None:
    await journal_scenario(runtime)
    site = await render(runtime)
    before = snapshot(site)
    later = MirrorChannel(
        runtime.settings.mirror,
        public_url="",
        journal=runtime.store,
        today=lambda: date.fromordinal(datetime.now(UTC).date().toordinal() + 1),
    )
    try:
        (result,) = await later.render_all()
    finally:
        await later.aclose()
    assert result.detail.startswith("2 of ")
    after = snapshot(site)
    assert {path for path in after if after[path] != before[path]} == {"index.html", "uptime.json"}


async def test_the_mirror_needs_a_journal_with_the_site_reads(runtime: Runtime) -> None:
    class Bare:
        async def site_history(self, *, recent: int | None) -> list[IncidentHistory]:
            return []

        async def suppressed(self) -> frozenset[str]:
            return frozenset()

    with pytest.raises(TypeError, match="Bare has not"):
        MirrorChannel.create(ChannelContext(runtime.settings, Bare()))


async def test_serve_renders_the_site_again_after_midnight_utc(runtime: Runtime) -> None:
    await journal_scenario(runtime)
    site = Path(str(runtime.settings.mirror.directories[0]))
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    runtime.clock = lambda: midnight.timestamp() - 0.05  # the service's clock says midnight is 50 ms away
    task = asyncio.create_task(render_each_day(runtime))
    try:
        await asyncio.sleep(0)  # the task runs up to its first wait
        assert not (site / "uptime.json").exists(), "rendered before midnight"
        await eventually(
            lambda: asyncio.to_thread((site / "uptime.json").exists), within=10
        )  # due about 1 s after that midnight
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert json.loads((site / "uptime.json").read_text())["date"] == midnight.date().isoformat()
    assert (site / "history.html").exists()


async def test_serve_renders_the_site_again_once_back_from_running_degraded(
    write_config: WriteConfig, redis_alone: RedisServer
) -> None:
    """What a degraded instance published came from its replica: once the store is shared again (a real
    redis-server stopped and started again under the failover store `serve` runs on), the whole site is
    rendered from it. No lane runs here, so only that render writes the site."""
    path = write_config(f'[store]\nurl = "{redis_alone.url}"\n[mirror]\npage_title = "Example status"\n')
    runtime = await open_runtime(load_settings(path), serving=True)
    site = Path(str(runtime.settings.mirror.directories[0]))
    try:
        async with runtime.store.follow(on_work=lambda: None, on_controls=lambda: None, on_holder_gone=lambda: None):
            rendering = asyncio.create_task(render_after_outages(runtime))
            try:
                redis_alone.stop()
                draft = {"title": "Checkout errors", "status": "investigating", "message": "Payments fail."}
                await runtime.submit(UpdateDraft.model_validate(draft))  # into the replica
                assert runtime.store.standing().degraded and not (site / "index.html").exists()
                redis_alone.start(again=True)
                # The probe, the way back, then the render's next look.
                await eventually(lambda: asyncio.to_thread((site / "index.html").exists), within=30)
            finally:
                rendering.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await rendering
    finally:
        await runtime.close()
    assert "Checkout errors" in (site / "index.html").read_text()
