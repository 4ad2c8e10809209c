"""The mirror's files, rendered from a Site: HTML pages, the Atom feed and the api/v2 JSON.

Everything is escaped by Jinja2's autoescaping; pages link only to each other, relatively, and carry
their CSS inline, so a page shows the same with the primary platform, its fonts and its CDN all gone."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup, escape

from broadcaster.domain.statuspage import Site, api_files
from channels.mirror.feed import atom_feed


def render_site(site: Site, *, incident_ids: Collection[str] | None, history_days: int) -> dict[str, bytes]:
    """The files to write, by path relative to the site root, in a safe write order: incident pages
    first and index.html last, so no page ever links to a file not written yet.

    `incident_ids` limits the incident pages to those incidents (None: every incident)."""
    files: dict[str, bytes] = {}
    for history in site.histories:
        if incident_ids is None or history.incident.id in incident_ids:
            files[f"incidents/{history.incident.id}.html"] = _page(
                "incident.html.j2", site, root="../", incident=history.incident, history=history
            )
    for path, data in api_files(site).items():
        files[path] = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
    files["history.atom"] = atom_feed(site)
    files["index.html"] = _page("index.html.j2", site, root="", **_index_context(site, history_days))
    return files


def _index_context(site: Site, history_days: int) -> dict[str, Any]:
    # "Recent" is measured from the journal's latest update, not from the clock, so rendering the same
    # journal twice gives the same page.
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
    }


def _page(template: str, site: Site, **context: Any) -> bytes:
    return _environment().get_template(template).render(site=site, **context).encode()


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
    env.filters["paragraphs"] = paragraphs
    return env


def when(value: datetime | None) -> str:
    """ "23 Nov 2026, 08:17 UTC"."""
    return "" if value is None else value.strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def paragraphs(text: str) -> Markup:
    """Escaped text with blank lines as paragraph breaks and single newlines as line breaks."""
    blocks = [block for block in text.split("\n\n") if block.strip()]
    return Markup("").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in block.split("\n")))
        for block in blocks
    )
