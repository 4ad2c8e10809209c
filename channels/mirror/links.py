"""The pages a site's files link to. A copy of the site kept up by updates (a directory, a publish target's
staging copy) lacks the pages of incidents the mirror never rendered (sent to other channels only, or
journaled before the copy existed), while the index, the history and the JSON list every incident: an
update renders those pages too, so no copy ever links to a page it lacks."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Awaitable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

# Relative links only: one with a scheme (":") or a fragment or query leaves the site or stays on the page.
_HREF: Final = re.compile(rb'href="([^"#?:]+\.html)"')
_INCIDENT_PAGE: Final = re.compile(rb"incidents/([A-Za-z0-9_-]{1,64})\.html")


def linked_pages(files: Mapping[str, bytes]) -> set[str]:
    """Site paths of the pages `files` link to: the relative links of the HTML, and the incident pages the
    other files (the JSON, the feed) name."""
    found: set[str] = set()
    for path, content in files.items():
        if path.endswith(".html"):
            base = posixpath.dirname(path)
            found.update(posixpath.normpath(posixpath.join(base, link.decode())) for link in _HREF.findall(content))
        else:
            found.update(f"incidents/{name.decode()}.html" for name in _INCIDENT_PAGE.findall(content))
    return {path for path in found if not path.startswith("../")}


def missing_pages(files: Mapping[str, bytes], staged: Collection[str]) -> set[str]:
    """Pages `files` link to that neither they nor the staging copy (`staged`) have."""
    return {path for path in linked_pages(files) if path not in files and path not in staged}


def incident_ids(paths: Collection[str]) -> list[str] | None:
    """The incidents whose pages `paths` are; None if one of them is not an incident page."""
    ids = []
    for path in sorted(paths):
        found = _INCIDENT_PAGE.fullmatch(path.encode())
        if found is None:
            return None
        ids.append(found.group(1).decode())
    return ids


@dataclass(frozen=True, slots=True)
class Rendered:
    files: Mapping[str, bytes]
    revision: str
    """Orders renders by what they show (manifest.Held.revision): of two, the larger is the newer site."""


class Render(Protocol):
    """The site's files: the whole site (`whole`), or what the update in hand changes plus the pages of the
    incidents `also` names. Rendered while the target's lock is held, so of two processes publishing to one
    target, the later renders the later journal."""

    def __call__(self, whole: bool, also: Sequence[str] = ()) -> Awaitable[Rendered]: ...


async def with_linked_pages(render: Render, present: Collection[str]) -> tuple[Rendered, bool]:
    """An update's render, with the pages of the incidents its files link to that neither they nor the copy
    (`present`: its site paths) have; the whole site when a missing page is no incident's. Also says whether
    it is the whole site."""
    rendered = await render(False)
    missing = missing_pages(rendered.files, present)
    if not missing:
        return rendered, False
    ids = incident_ids(missing)
    return await render(ids is None, ids or ()), ids is None
