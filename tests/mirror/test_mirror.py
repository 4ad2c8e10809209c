"""The static mirror on real directories: Statuspage-exact JSON, self-contained escaped pages, atomic and
repeatable writes."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.runtime import Runtime, open_runtime
from channels.base import ChannelContext
from channels.mirror import MirrorChannel
from channels.mirror import channel as mirror_channel
from channels.mirror.files import write_tree as files_write_tree
from config import load_settings
from tests.conftest import WriteConfig
from tests.mirror.helpers import XSS, journal_scenario, load, render

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

PAGE_KEYS = {"id", "name", "url", "time_zone", "updated_at"}
STATUS_KEYS = {"indicator", "description"}
COMPONENT_KEYS = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
}
INCIDENT_KEYS = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "impact",
    "shortlink",
    "started_at",
    "page_id",
    "incident_updates",
    "components",
}
MAINTENANCE_KEYS = INCIDENT_KEYS | {"scheduled_for", "scheduled_until"}
UPDATE_KEYS = {
    "id",
    "status",
    "body",
    "incident_id",
    "created_at",
    "updated_at",
    "display_at",
    "affected_components",
    "deliver_notifications",
    "custom_tweet",
    "tweet_id",
}
AFFECTED_KEYS = {"code", "name", "old_status", "new_status"}


async def test_api_files_have_exactly_the_statuspage_fields_and_values(runtime: Runtime) -> None:
    ids = await journal_scenario(runtime)
    site = await render(runtime)
    summary = load(site, "summary.json")
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert set(summary["page"]) == PAGE_KEYS
    assert summary["page"]["name"] == "Example status"
    assert summary["page"]["time_zone"] == "Etc/UTC"
    assert summary["status"] == {"indicator": "major", "description": "Partial System Outage"}

    components = {c["name"]: c for c in load(site, "components.json")["components"]}
    assert list(components) == ["API", "Dashboard", "Billing"]
    for component in components.values():
        assert set(component) == COMPONENT_KEYS
        assert component["page_id"] == summary["page"]["id"]
    assert {name: c["status"] for name, c in components.items()} == {
        "API": "partial_outage",
        "Dashboard": "operational",
        "Billing": "degraded_performance",
    }
    assert [c["position"] for c in components.values()] == [1, 2, 3]

    (unresolved,) = load(site, "incidents/unresolved.json")["incidents"]
    assert set(unresolved) == INCIDENT_KEYS
    assert unresolved["id"] == ids["outage"]
    assert (unresolved["status"], unresolved["impact"]) == ("identified", "major")
    assert unresolved["shortlink"] == f"incidents/{ids['outage']}.html"
    assert [u["status"] for u in unresolved["incident_updates"]] == ["identified", "investigating"]
    newest = unresolved["incident_updates"][0]
    assert set(newest) == UPDATE_KEYS
    assert newest["incident_id"] == ids["outage"]
    assert newest["body"] == "Found a bad deploy."
    for affected in newest["affected_components"]:
        assert set(affected) == AFFECTED_KEYS
    assert {a["name"]: (a["old_status"], a["new_status"]) for a in newest["affected_components"]} == {
        "API": ("partial_outage", "partial_outage"),
        "Billing": ("operational", "degraded_performance"),
    }
    for key in ("created_at", "updated_at", "started_at"):
        assert ISO.match(unresolved[key]), unresolved[key]
    assert unresolved["resolved_at"] is None

    incidents = load(site, "incidents.json")["incidents"]
    assert [i["id"] for i in incidents] == [ids["outage"], ids["old"]]  # newest first, no maintenance
    resolved = incidents[1]
    assert resolved["status"] == "resolved"
    assert ISO.match(resolved["resolved_at"])

    (maintenance,) = load(site, "scheduled-maintenances.json")["scheduled_maintenances"]
    assert set(maintenance) == MAINTENANCE_KEYS
    assert (maintenance["status"], maintenance["impact"]) == ("scheduled", "maintenance")
    assert ISO.match(maintenance["scheduled_for"])
    assert [m["id"] for m in summary["scheduled_maintenances"]] == [ids["maintenance"]]
    assert load(site, "scheduled-maintenances/upcoming.json")["scheduled_maintenances"][0]["id"] == ids["maintenance"]
    assert load(site, "scheduled-maintenances/active.json")["scheduled_maintenances"] == []
    assert load(site, "status.json") == {"page": summary["page"], "status": summary["status"]}


async def test_an_all_clear_page_says_so(runtime: Runtime) -> None:
    site = await render(runtime)
    assert load(site, "status.json")["status"] == {"indicator": "none", "description": "All Systems Operational"}
    assert "All systems operational" in (site / "index.html").read_text()  # the badges' sentence case


class _Links(HTMLParser):
    """Every URL a page could load or link to, and every element name."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("href", "src", "action", "srcset", "poster", "data", "formaction") and value:
                self.urls.append(value)


async def test_pages_have_no_external_url_no_script_and_escape_user_text(runtime: Runtime) -> None:
    ids = await journal_scenario(runtime)
    site = await render(runtime)
    for page in [site / "index.html", site / "incidents" / f"{ids['outage']}.html"]:
        html = page.read_text()
        links = _Links()
        links.feed(html)
        assert "script" not in links.tags
        assert links.urls
        for url in links.urls:
            assert not re.match(r"^([a-z][a-z0-9+.-]*:|//)", url, re.IGNORECASE), f"{page.name}: {url}"
        for style in re.findall(r"<style>(.*?)</style>", html, re.DOTALL):
            assert "url(" not in style
            assert "@import" not in style
            assert "@font-face" not in style
        assert XSS not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "default-src 'none'" in html  # the CSP that forbids any load the markup might still name


async def test_rendering_twice_gives_the_same_files(runtime: Runtime) -> None:
    await journal_scenario(runtime)
    site = await render(runtime)
    first = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    mirror = MirrorChannel.create(ChannelContext(runtime.settings, runtime.store))
    try:
        (again,) = await mirror.render_all()
    finally:
        await mirror.aclose()
    second = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    assert first == second
    assert again.detail.startswith("0 of ")  # nothing rewritten: caches keep their copies
    assert not [p for p in site.rglob(".*tmp*")]


async def test_readers_never_see_a_half_written_file(runtime: Runtime) -> None:
    """Files are replaced by rename, so a web server reading while the mirror writes always gets a whole page."""
    site = await render(runtime)
    index = site / "index.html"
    torn: list[int] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not stop.is_set() and reads < 200_000:
            data = index.read_bytes()
            reads += 1
            if not data.endswith(b"</html>\n"):
                torn.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(30):
            await runtime.submit(
                UpdateDraft(title=f"Incident {n}", status="investigating", message="x" * (n * 150 + 1))
            )
            await render(runtime)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert reads > 0
    assert torn == []


async def test_the_atom_feed_is_valid_and_stable(runtime: Runtime) -> None:
    await journal_scenario(runtime)
    site = await render(runtime)
    feed = ET.fromstring((site / "history.atom").read_bytes())  # noqa: S314 - the feed this test just rendered
    atom = "{http://www.w3.org/2005/Atom}"
    entries = feed.findall(f"{atom}entry")
    assert len(entries) == 5
    titles = [e.findtext(f"{atom}title") for e in entries]
    assert titles[0] == "Database upgrade: Scheduled"
    assert all((e.findtext(f"{atom}id") or "").startswith("urn:uuid:") for e in entries)
    assert feed.findtext(f"{atom}updated") == entries[0].findtext(f"{atom}updated")
    assert XSS in (entries[1].findtext(f"{atom}title") or "")  # text in XML, escaped by the serializer


async def test_one_broken_directory_does_not_hold_back_another(write_config: WriteConfig, tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where a directory should be")
    path = write_config('[mirror]\ndirectories = ["public", "blocked/site"]\n')
    runtime = await open_runtime(load_settings(path))
    try:
        async with Dispatcher(runtime) as dispatcher:
            accepted = await runtime.submit(UpdateDraft(title="API errors", status="investigating", message="x"))
            dispatcher.wake()
            deliveries = await dispatcher.settle([accepted.update.id], wait=20)
    finally:
        await runtime.close()
    by_target = {d.target: d for d in deliveries}
    assert by_target["public"].state is DeliveryState.DELIVERED
    assert by_target["blocked/site"].state is DeliveryState.FAILED
    assert "Not a directory" in by_target["blocked/site"].last_error
    assert (tmp_path / "public" / "index.html").is_file()


async def test_a_hung_directory_holds_only_itself_while_renders_take_turns(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve's own render of this host's directories and a lane's render take turns per directory: while a
    whole-site render waits on a mount that hangs, a render into another directory goes through."""
    runtime = await open_runtime(load_settings(write_config('[mirror]\ndirectories = ["public", "hung"]\n')))
    entered, release = threading.Event(), threading.Event()

    def write_tree(directory: Path, files: Mapping[str, bytes]) -> int:
        if directory.name == "hung":  # a mount that does not answer, until released
            entered.set()
            release.wait(30)
        return files_write_tree(directory, files)

    monkeypatch.setattr(mirror_channel, "write_tree", write_tree)
    keeper = MirrorChannel.create(ChannelContext(runtime.settings, runtime.store))
    lane = MirrorChannel.create(ChannelContext(runtime.settings, runtime.store))
    whole = asyncio.create_task(keeper.render_here(None))
    try:
        accepted = await runtime.submit(UpdateDraft(title="API errors", status="investigating", message="x"))
        assert await asyncio.to_thread(entered.wait, 10)
        async with asyncio.timeout(10):
            results = await lane.render_here([accepted.incident.id], paused={"hung"})
        assert [r.ok for r in results] == [True, True]  # public rendered, hung left as paused
        assert "API errors" in (tmp_path / "public" / "index.html").read_text()
    finally:
        release.set()
        await whole
        await keeper.aclose()
        await lane.aclose()
        await runtime.close()


async def test_check_reports_each_directory(write_config: WriteConfig, tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("file")
    path = write_config('[mirror]\ndirectories = ["public", "blocked/site"]\n')
    runtime = await open_runtime(load_settings(path))
    mirror = MirrorChannel.create(ChannelContext(runtime.settings, runtime.store))
    try:
        results = {r.target: r for r in await mirror.check()}
    finally:
        await mirror.aclose()
        await runtime.close()
    assert results["public"].ok
    assert not results["blocked/site"].ok
    assert "not writable" in results["blocked/site"].detail
    assert list((tmp_path / "public").iterdir()) == []  # the probe leaves nothing behind


async def test_pages_render_while_the_journal_is_written(runtime: Runtime) -> None:
    """Renders and submits interleave without errors (the journal thread serialises them)."""
    await asyncio.gather(render(runtime), runtime.submit(UpdateDraft(title="A", status="investigating", message="x")))
    site = await render(runtime)
    assert len(load(site, "incidents.json")["incidents"]) == 1
