"""The publish targets' manifests in the Redis journal: one JSON string per target (path -> content hash)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from broadcaster.store.redis.connection import Link, optional_text


def _key(link: Link, target: str) -> str:
    return f"{link.prefix}publish-manifest:{target}"


async def publish_manifest(link: Link, target: str) -> dict[str, str] | None:
    stored = optional_text(await link.client.get(_key(link, target)))
    if stored is None:
        return None
    manifest: dict[str, str] = json.loads(stored)
    return manifest


async def save_publish_manifest(link: Link, target: str, manifest: Mapping[str, str]) -> None:
    await link.client.set(_key(link, target), json.dumps(dict(manifest), separators=(",", ":"), sort_keys=True))
