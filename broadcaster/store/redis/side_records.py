"""What the Redis journal keeps beside incidents, updates and the delivery queue: the suppression list,
the publish targets' manifests and (through SubscriberRecords) the subscribers; and its answer to a request
for a copy of itself. RedisStore provides `link` and `_failures`.

    P suppressions                 hash address -> JSON {reason, source, added_at}"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from broadcaster.domain.errors import StoreError
from broadcaster.store.redis import manifests, reading
from broadcaster.store.redis.records import suppression_entry
from broadcaster.store.redis.subscribers import SubscriberRecords


class SideRecords(SubscriberRecords):
    # --- suppressions

    async def suppress(self, entries: Mapping[str, str], *, source: str, now: float) -> int:
        link = self.link
        pairs = [
            part
            for address, reason in entries.items()
            for part in (address.lower(), suppression_entry(reason=reason, source=source, now=now))
        ]
        with self._failures.guard("write", write=True):
            added: int = await link.run(link.scripts.suppress, *pairs)
        return added

    async def suppressed(self) -> frozenset[str]:
        with self._failures.guard("read", write=False):
            return await reading.suppressed(self.link)

    async def is_suppressed(self, address: str) -> bool:
        with self._failures.guard("read", write=False):
            return bool(await self.link.client.hexists(f"{self.link.prefix}suppressions", address.lower()))

    async def unsuppress(self, address: str) -> bool:
        with self._failures.guard("write", write=True):
            return bool(await self.link.client.hdel(f"{self.link.prefix}suppressions", address.lower()))

    # --- publish manifests

    async def publish_manifest(self, target: str) -> Mapping[str, str] | None:
        with self._failures.guard("read", write=False):
            return await manifests.publish_manifest(self.link, target)

    async def save_publish_manifest(self, target: str, manifest: Mapping[str, str]) -> None:
        with self._failures.guard("write", write=True):
            await manifests.save_publish_manifest(self.link, target, manifest)

    # --- copies

    async def snapshot_to(self, path: Path) -> None:
        raise StoreError(
            "a Redis journal has no copy of its own: it is exported into a new SQLite journal through its reads "
            "(broadcaster.store.sqlite.importing.sqlite_copy, as `broadcaster kit` and GET /api/v1/snapshot do)"
        )
