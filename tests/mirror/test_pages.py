"""What the pages say: the banner in the badges' words, when each page last changed, links in messages,
and a maintenance's window."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.statuspage import STATUS_DESCRIPTIONS
from broadcaster.domain.vocabulary import Impact
from broadcaster.runtime import Runtime
from channels.mirror.pages import when
from tests.mirror.helpers import journal_scenario, load, render

BANNER = re.compile(r'<div class="banner [a-z]+" role="status">(.*?)</div>')
BADGE = re.compile(r'<span class="badge [a-z]+">(.*?)</span>')


def banner(site: Path) -> str:
    (text,) = BANNER.findall((site / "index.html").read_text())
    return str(text)


@pytest.mark.parametrize("impact", [Impact.MINOR, Impact.MAJOR, Impact.CRITICAL])
async def test_the_banner_uses_the_words_of_the_badge_under_it(runtime: Runtime, impact: Impact) -> None:
    await runtime.submit(UpdateDraft(title="API errors", status="investigating", message="Looking.", impact=impact))
    site = await render(runtime)
    (badge,) = BADGE.findall((site / "index.html").read_text())
    assert banner(site) == badge
    # api/v2 keeps Statuspage's own description, which Statuspage clients match on.
    assert load(site, "status.json")["status"]["description"] == STATUS_DESCRIPTIONS[impact]


async def test_maintenance_under_way_is_named_alike_in_the_banner_and_its_badge(runtime: Runtime) -> None:
    await runtime.submit(UpdateDraft(title="Database upgrade", status="in_progress", message="Under way."))
    site = await render(runtime)
    (badge,) = BADGE.findall((site / "index.html").read_text())
    assert banner(site).startswith(badge)


async def test_every_page_of_an_empty_site_says_when_it_last_changed(runtime: Runtime) -> None:
    site = await render(runtime)
    pages = sorted(site.rglob("*.html"))
    assert [page.name for page in pages] == ["history.html", "index.html"]
    for page in pages:
        assert "Last updated: never (nothing reported yet)." in page.read_text(), page


async def test_every_page_says_when_it_last_changed(runtime: Runtime) -> None:
    await journal_scenario(runtime)
    site = await render(runtime)
    newest = max(incident.updated_at for incident in await runtime.store.incidents())
    for name in ["index.html", "history.html"]:
        assert f"Last updated {when(newest)}." in (site / name).read_text(), name
    for incident in await runtime.store.incidents():
        page = site / "incidents" / f"{incident.id}.html"
        assert f"Last updated {when(incident.updated_at)}." in page.read_text(), page


async def test_links_in_messages_are_clickable_http_and_https_only(runtime: Runtime) -> None:
    message = (
        "Details: https://status.example.com/a?b=1&c=2. Also (http://example.org/x).\n\n"
        'Not these: javascript:alert(1) data:text/html,<b>x</b> https://e.com/"onmouseover="alert(1)'
    )
    incident = await runtime.submit(UpdateDraft(title="API errors", status="investigating", message=message))
    site = await render(runtime)
    html = (site / "incidents" / f"{incident.incident.id}.html").read_text()
    links = re.findall(r"<a [^>]*>.*?</a>", html.split('<ol class="timeline">')[1].split("</ol>")[0])
    assert links == [
        '<a href="https://status.example.com/a?b=1&amp;c=2" rel="nofollow noopener">'
        "https://status.example.com/a?b=1&amp;c=2</a>",
        '<a href="http://example.org/x" rel="nofollow noopener">http://example.org/x</a>',
        '<a href="https://e.com/" rel="nofollow noopener">https://e.com/</a>',
    ]
    assert "javascript:alert(1) data:text/html,&lt;b&gt;x&lt;/b&gt;" in html
    assert "&#34;onmouseover=&#34;alert(1)" in html


async def test_a_maintenance_page_shows_its_scheduled_window(runtime: Runtime) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=2, minute=0, second=0, microsecond=0)
    accepted = await runtime.submit(
        UpdateDraft(
            title="Database upgrade",
            status="scheduled",
            message="Planned work.",
            scheduled_for=start,
            scheduled_until=start + timedelta(hours=2),
        )
    )
    site = await render(runtime)
    html = (site / "incidents" / f"{accepted.incident.id}.html").read_text()
    expected = f"{start.strftime('%d %b %Y').lstrip('0')}, 02:00 to 04:00 UTC"
    assert f'Scheduled for <span class="window">{expected}</span>' in html
    assert "started" not in html
    assert expected in (site / "index.html").read_text()
