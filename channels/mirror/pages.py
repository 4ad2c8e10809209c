"""The mirror's files, rendered from the site's content: HTML pages, the Atom feed and the JSON.

Everything is escaped by Jinja2's autoescaping; pages link only to each other, relatively, and carry
their CSS inline, so a page shows the same with the primary platform, its fonts and its CDN all gone.
Each page says when it last changed by its own newest update, never by the site's, so an update rewrites
only the pages it changes; the uptime bars (the index and uptime.json) end on the render's date."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache, partial
from itertools import groupby
from typing import Any, Final

import jinja2
from markupsafe import Markup, escape

from broadcaster.domain.models import IncidentHistory
from broadcaster.domain.statuspage import IncidentSummary, Site, api_files, uptime_json
from broadcaster.domain.uptime import ComponentUptime, as_percent
from channels.mirror.feed import atom_feed


@dataclass(frozen=True, slots=True)
class SiteContent:
    """What every file but the incident pages is made of: the same for `send` and `render`, so both give
    the same bytes from the same journal on the same UTC date."""

    site: Site
    summaries: Sequence[IncidentSummary]
    """Every incident and maintenance (history.html)."""
    uptimes: Sequence[ComponentUptime]
    today: date
    subscribe_url: str = ""
    """Where people subscribe to updates ([service] public_url's /subscribe); "" leaves the link out."""


def render_site(content: SiteContent, *, pages: Sequence[IncidentHistory], history_days: int) -> dict[str, bytes]:
    """The files to write, by path relative to the site root, in a safe write order: incident pages
    first, then what links to them, index.html last, so no page ever links to a file not written yet.
    `pages`: the incidents whose pages to render (every incident for a whole render)."""
    site = content.site
    page = _pages(content)
    files: dict[str, bytes] = {}
    for history in pages:
        incident = history.incident
        files[f"incidents/{incident.id}.html"] = page(
            "incident.html.j2", site, root="../", updated_at=incident.updated_at, incident=incident, history=history
        )
    for path, data in api_files(site).items():
        files[path] = _json(data)
    files["uptime.json"] = _json(uptime_json(site, content.uptimes, today=content.today))
    files["history.atom"] = atom_feed(site)
    files.update(_history_pages(content.summaries, page, site, touched=pages))
    files["index.html"] = page(
        "index.html.j2", site, root="", updated_at=site.updated_at, **_index_context(content, history_days)
    )
    return files


def _json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def _index_context(content: SiteContent, history_days: int) -> dict[str, Any]:
    # "Recent" is measured from the journal's latest update, not from the clock, so rendering the same
    # journal twice gives the same page.
    site = content.site
    since = site.updated_at - timedelta(days=history_days) if site.updated_at else None
    past = [
        h
        for h in site.incidents()
        if not h.incident.is_open and h.incident.resolved_at and since and h.incident.resolved_at >= since
    ]
    return {
        "open_incidents": site.open_incidents(),
        "active_maintenances": site.active_maintenances(),
        "upcoming_maintenances": site.upcoming_maintenances(),
        "past": past,
        "history_days": history_days,
        "uptimes": {uptime.name: uptime for uptime in content.uptimes},
    }


def _history_pages(
    summaries: Sequence[IncidentSummary], page: Callable[..., bytes], site: Site, *, touched: Sequence[IncidentHistory]
) -> dict[str, bytes]:
    """The incident history a calendar quarter (UTC) a page, as Statuspage pages it: history.html the
    newest quarter with incidents, history-YYYY-MM.html each older one (its first month), linked in turn.
    Only the pages of the `touched` incidents' quarters are rendered, and the neighbours of a quarter
    that only they fill (it may be new, and their links change), so a render stays bounded by a
    quarter's incidents however long the journal; a whole render touches every incident."""
    ordered = sorted(summaries, key=lambda s: (s.started_at, s.id), reverse=True)
    quarters = [(quarter, list(rows)) for quarter, rows in groupby(ordered, key=lambda s: _quarter(s.started_at))]
    history = partial(page, "history.html.j2", site, root="")
    if not quarters:
        return {"history.html": history(period="", months=[], updated_at=None, newer=None, older=None)}
    touched_ids = {history.incident.id for history in touched}
    wanted = {_quarter(history.incident.started_at) for history in touched}
    for index, (quarter, rows) in enumerate(quarters):
        if quarter in wanted and all(row.id in touched_ids for row in rows):
            wanted |= {neighbour for neighbour, _ in quarters[max(index - 1, 0) : index + 2]}
    names = [_history_name(quarter, newest=quarters[0][0]) for quarter, _ in quarters]
    files = {}
    for index, (quarter, rows) in enumerate(quarters):
        if quarter in wanted:
            files[names[index]] = history(
                period=_period(quarter),
                months=[(month, list(group)) for month, group in groupby(rows, key=lambda s: f"{s.started_at:%B %Y}")],
                updated_at=max(row.updated_at for row in rows),
                newer=(names[index - 1], _period(quarters[index - 1][0])) if index else None,
                older=(names[index + 1], _period(quarters[index + 1][0])) if index + 1 < len(quarters) else None,
            )
    return files


def _quarter(moment: datetime) -> date:
    """The first day of the calendar quarter (UTC) that `moment` falls in."""
    return date(moment.year, 3 * ((moment.month - 1) // 3) + 1, 1)


def _period(quarter: date) -> str:
    """ "October to December 2026"."""
    return f"{quarter:%B} to {date(quarter.year, quarter.month + 2, 1):%B %Y}"


def _history_name(quarter: date, *, newest: date) -> str:
    return "history.html" if quarter == newest else f"history-{quarter:%Y-%m}.html"


def _page(template: str, site: Site, **context: Any) -> bytes:
    return _environment().get_template(template).render(site=site, **context).encode()


def _pages(content: SiteContent) -> Callable[..., bytes]:
    """`_page` with what every page of the site shows."""
    return partial(_page, subscribe_url=content.subscribe_url)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("channels.mirror", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["when"] = when
    env.filters["window"] = window
    env.filters["day"] = day
    env.filters["percent"] = percent
    env.filters["paragraphs"] = paragraphs
    return env


def when(value: datetime | None) -> str:
    """ "23 Nov 2026, 08:17 UTC"."""
    return "" if value is None else value.strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def window(start: datetime, end: datetime | None) -> str:
    """ "3 Dec 2026, 02:00 to 04:00 UTC", or with both dates when it spans midnight (UTC)."""
    if end is None:
        return when(start)
    if end.date() == start.date():
        return f"{start.strftime('%d %b %Y, %H:%M').lstrip('0')} to {end.strftime('%H:%M UTC')}"
    return f"{when(start).removesuffix(' UTC')} to {when(end)}"


def day(value: date) -> str:
    """ "3 Nov 2026"."""
    return value.strftime("%d %b %Y").lstrip("0")


def percent(fraction: float) -> str:
    """ "99.58%": two decimals, rounded down, so a day with any downtime never shows as 100%."""
    return f"{as_percent(fraction):.2f}%"


def paragraphs(text: str) -> Markup:
    """Escaped text with blank lines as paragraph breaks, single newlines as line breaks, and links."""
    blocks = [block for block in text.split("\n\n") if block.strip()]
    return Markup("").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(linked(line) for line in block.split("\n")))
        for block in blocks
    )


# Only http and https become links: a javascript: or data: URL in a message stays text.
_URL: Final = re.compile(r"\bhttps?://[^\s<>\"]+", re.IGNORECASE)
_TRAILING: Final = ".,;:!?'\")]"


def linked(line: str) -> Markup:
    """Escaped text whose http(s) URLs are links that pass no referrer credit and no opener."""
    parts: list[Markup] = []
    position = 0
    for match in _URL.finditer(line):
        url = _without_trailing_punctuation(match.group())
        if url.partition("://")[2]:  # "see https://." names no address
            parts.append(escape(line[position : match.start()]))
            parts.append(Markup('<a href="{0}" rel="nofollow noopener">{0}</a>').format(url))
            position = match.start() + len(url)
    parts.append(escape(line[position:]))
    return Markup("").join(parts)


def _without_trailing_punctuation(url: str) -> str:
    """The URL a sentence ends with, without the sentence's full stop or closing bracket; a bracket the
    URL itself opened ("wiki/Foo_(bar)") stays."""
    while url and url[-1] in _TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url
