"""What a publish target holds, and what a publish must do to bring it up to the site.

A manifest maps each path the target was sent to the SHA-256 of its content. The plan uploads pages
before the files that link to them (index.html last) and deletes only after every upload, so a publish
cut off at any point leaves each remote file old or new, and the index never linking to a missing page.

Stored, a manifest also names its destination (a fingerprint of where the target points: a manifest of
another place is no manifest at all) and the revision of the site it describes (see Held.revision)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

UNKNOWN: Final = ""
"""The hash of a path a publish started to change and may not have finished: the next publish sends it
again (or deletes it again)."""
LAST: Final = frozenset({"index.html"})
"""Pages that link to everything else: uploaded after every other file."""
DESTINATION: Final = "/destination"
REVISION: Final = "/revision"
"""Keys of a stored manifest that are not paths (a site's path is relative: it never starts with "/")."""
BATCH_PER_CONNECTION: Final = 4
"""Uploads per connection between two saves of a publish's progress: a journal write per batch, and a
retry resumes where the last saved batch ended."""


@dataclass(frozen=True, slots=True)
class Held:
    """What a target holds, as its stored manifest says."""

    files: dict[str, str] = field(default_factory=dict)
    revision: str = ""
    """The revision of the site last sent (channel.revision_of: the journal's latest update and the render's
    date): a publish of an older one would replace a newer site, so it is skipped."""


def fingerprint(destination: Sequence[str]) -> str:
    """A short, secret-free digest of where a target points (config's `destination`)."""
    return digest(json.dumps(list(destination)).encode())[:32]


def stored(files: Mapping[str, str], *, destination: str, revision: str) -> dict[str, str]:
    """The manifest as the journal keeps it."""
    return {**files, DESTINATION: destination, REVISION: revision}


def held_by(saved: Mapping[str, str] | None, destination: str) -> Held | None:
    """The stored manifest, or None when there is none, or it describes another destination (the target
    was pointed elsewhere, or saved before destinations were recorded): the target is then published as
    if for the first time, adding and overwriting but deleting nothing."""
    if saved is None or saved.get(DESTINATION) != destination:
        return None
    files = {path: sha for path, sha in saved.items() if not path.startswith("/")}
    return Held(files, saved.get(REVISION, ""))


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def manifest_of(files: Mapping[str, bytes]) -> dict[str, str]:
    return {path: digest(content) for path, content in files.items()}


def upload_rank(path: str) -> int:
    """0: pages other files link to (incident pages, anything in a directory but the API); 1: the API JSON,
    the feed and other top-level pages; 2: the index."""
    if path in LAST:
        return 2
    if "/" in path and not path.startswith("api/"):
        return 0
    return 1


@dataclass(frozen=True, slots=True)
class Plan:
    uploads: tuple[str, ...]
    """In a safe order: see upload_rank."""
    deletions: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.uploads or self.deletions)

    def tiers(self) -> list[list[str]]:
        """The uploads by rank: each tier may go in parallel, and must finish before the next starts."""
        tiers: list[list[str]] = [[], [], []]
        for path in self.uploads:
            tiers[upload_rank(path)].append(path)
        return [tier for tier in tiers if tier]

    def batches(self, connections: int) -> list[list[str]]:
        """The uploads tier by tier, then the deletions, cut in batches: a publisher saves its progress after
        each, so a publish too large for one attempt resumes on the next rather than starting over."""
        size = max(1, connections * BATCH_PER_CONNECTION)
        steps = [*self.tiers(), list(self.deletions)]
        return [step[start : start + size] for step in steps for start in range(0, len(step), size)]


def plan(site: Mapping[str, str], remote: Mapping[str, str] | None) -> Plan:
    """What brings a target that holds `remote` (None: unknown, so nothing is deleted) up to `site`."""
    known = remote or {}
    uploads = sorted((path for path, sha in site.items() if known.get(path) != sha), key=lambda p: (upload_rank(p), p))
    deletions = sorted(path for path in known if path not in site)
    return Plan(uploads=tuple(uploads), deletions=tuple(deletions))


def in_progress(remote: Mapping[str, str] | None, work: Plan) -> dict[str, str]:
    """The manifest to keep while `work` runs: every path it touches is UNKNOWN until it ends."""
    pending = dict(remote or {})
    pending.update(dict.fromkeys((*work.uploads, *work.deletions), UNKNOWN))
    return pending
