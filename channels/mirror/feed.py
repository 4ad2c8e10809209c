"""history.atom: an Atom feed (RFC 4287) of the latest updates, for feed readers and automation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final
from xml.etree import ElementTree as ET

from broadcaster.domain.statuspage import Site, iso, shortlink

ATOM: Final = "http://www.w3.org/2005/Atom"
FEED_ENTRIES: Final = 50
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def atom_feed(site: Site) -> bytes:
    """The newest FEED_ENTRIES updates, newest first. Ids are derived from the journal's ids so a reader
    never sees an update twice across renders."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", _urn(site.page_id))
    _text(feed, "title", f"{site.name}: incident history")
    _text(feed, "updated", iso(site.updated_at or _EPOCH) or "")
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", site.name)
    _link(feed, f"{site.url}/index.html" if site.url else "index.html", rel="alternate", type_="text/html")
    if site.url:
        _link(feed, f"{site.url}/history.atom", rel="self", type_="application/atom+xml")

    updates = [(update, history.incident) for history in site.histories for update in history.updates]
    updates.sort(key=lambda pair: (pair[0].created_at, pair[0].id), reverse=True)
    for update, incident in updates[:FEED_ENTRIES]:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "id", _urn(update.id))
        _text(entry, "title", f"{incident.name}: {update.status.label}")
        _text(entry, "updated", iso(update.created_at) or "")
        _link(entry, shortlink(site, incident.id), rel="alternate", type_="text/html")
        _text(entry, "content", update.message).set("type", "text")
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _urn(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"broadcaster:{name}").urn


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}")
    element.text = text
    return element


def _link(parent: ET.Element, href: str, *, rel: str, type_: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}link", {"rel": rel, "type": type_, "href": href})
