"""The Redis journal: one Redis server (or primary) shared by every process, on any host. Whatever must be
atomic across keys is one Lua script (lua_*.py), so each operation is one round trip and no other client
sees it half done. Durability is the server's: acknowledged means in its memory, and on disk as its
persistence settings say (appendonly yes with appendfsync always matches the SQLite journal's).

Keys, all under one prefix P ("broadcaster:"); scripts reach keys they compute, so the journal runs on a
single Redis server or primary (not a Redis Cluster). The queue's indexes hold only open work (and failed
deliveries, for a requeue), so what a claim, a sweep or the backlog reads is bounded by outstanding work,
however long the history:

    P layout                       the key layout's version (layout.py)
    P journal                      the journal's identity: a new one means its data was lost (layout.py)
    P incident:<id>                JSON of the incident as it stands now
    P incident:<id>:updates        list of its update ids, by seq
    P incident:<id>:deliveries     list of its delivery ids, in acceptance order
    P incident:<id>:posts          hash "channel<TAB>target<TAB>update seq" -> external id of each delivered
                                   delivery that has one (a later update's thread parent)
    P incident:<id>:newest         hash "channel<TAB>target" -> latest update seq planned for a latest-only
                                   channel (an older delivery pending again is then stale)
    P incidents:recent             zset of incident ids by updated_at
    P incidents:open               zset of open incident ids by updated_at
    P incidents:due                zset of open incident ids by next_update_at (the overdue check)
    P update:<id>                  JSON of the update, the incident right after it, its request's identity
    P update:<id>:deliveries       list of its delivery ids, in plan order
    P idempotency:<key>            hash update_id, request_digest
    P idempotency-keys             set of every key of an idempotency:<key> hash (copies carry them)
    P content:<digest>             zset of update ids by created_at (the same content within a window)
    P seq                          counter: deliveries' acceptance order
    P plan:<update id>:<n>         hash of what the deliveries of one update to one channel (with the same
                                   attempts and time-to-live) share: update_id, incident_id, update_seq,
                                   channel, ordering, max_attempts, created_at, expires_at (written once, not
                                   once per delivery of a fan-out); and open, how many of them are open
    P delivery:<id>                hash of the delivery's own fields: plan, target, seq (acceptance order),
                                   state, attempts, and once they are set not_before, last_error, detail,
                                   external_id, finished_at, has_progress; lease_owner and lease_until while
                                   leased ("" once the lease ends)
    P queue:<queue>                list of a queue's open delivery ids in seq order: queue is "in_order<TAB>
                                   channel<TAB>target", or "latest_only<TAB>channel<TAB>incident<TAB>target";
                                   only the first of a queue may be leased
    P channels                     set of the channels that have had deliveries
    P channel:<c>:open             zset of plans with open deliveries by created_at (backlog, open deliveries)
    P channel:<c>:ready            zset of pending firsts of their queues, due when admitted, by seq (what a
                                   claim leases from, in acceptance order)
    P channel:<c>:waiting          zset of pending firsts due later (retries), by not_before; a claim moves
                                   those come due to the ready set
    P channel:<c>:expiry           zset of plans that may have pending deliveries, by expires_at (a sweep
                                   expires what is pending of each plan past it, and drops the plan)
    P channel:<c>:failed           set of failed delivery ids (requeue)
    P channel:<c>:stale            set of latest-only deliveries pending again with a newer update planned
    P channel:<c>:paused           set of paused targets ("" for the whole channel)
    P leases                       zset of in-flight delivery ids by lease_until
    P owners                       set of lease owners holding leases
    P owner:<owner>                set of the delivery ids it holds
    P progress:<id>                hash of a delivery's saved progress: key -> note
    P with-progress                set of deliveries whose progress is not pruned yet
    P attempts:<id>                list of JSON [number, started_at, finished_at, outcome, error]
    P suppressions                 hash address -> JSON {reason, source, added_at}
    P subscribers:<kind>           hash address -> JSON {components, since, source} (subscribers.py)
    P controls                     hash "channel<TAB>target" -> JSON {paused, reason, updated_at}
    P publish-manifest:<target>    JSON of what a mirror publish target holds: path -> content hash
    P revoked-session:<id>         until when a logged-out web session is refused; expires then (sessions.py)
    P redeemed:<purpose><TAB><nonce>  until when a redeemed login link is remembered; expires then (sessions.py)
    P notices                      pub/sub channel: "work <sender>", "controls <sender>" (notices.py)
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import ClassVar, Final

from broadcaster.domain.errors import LeaseLost, StoreError
from broadcaster.domain.models import UpdateDraft, new_id
from broadcaster.domain.vocabulary import Ordering
from broadcaster.store.base import (
    NO_PROGRESS,
    Accepted,
    BatchedClaims,
    Claimed,
    ClaimResult,
    Delivery,
    Handoff,
    HandsOff,
    Outcome,
    PlannedDelivery,
    Store,
    UpdateCopy,
)
from broadcaster.store.redis import accepting, adopting, notices
from broadcaster.store.redis.connection import (
    SOCKET_TIMEOUT,
    Failures,
    Link,
    Scripts,
    new_client,
    optional_text,
    text,
    warn_of_clock_skew,
)
from broadcaster.store.redis.journal_reads import JournalReads
from broadcaster.store.redis.layout import settle_layout
from broadcaster.store.redis.records import (
    UpdateView,
    control_entry,
    decoded,
    delivery_from_row,
    listed,
    number,
    outcome_entry,
    update_view,
)
from broadcaster.store.redis.sessions import SessionRecords
from broadcaster.store.redis.side_records import SideRecords

PREFIX: Final = "broadcaster:"
KNOWN_UPDATES: Final = 32
"""Recent updates whose incident and history claims keep decoded (a claim's script sends only the others)."""


class RedisStore(JournalReads, SessionRecords, SideRecords, BatchedClaims, HandsOff, Store):
    shared_by_instances: ClassVar[bool] = True
    """Processes on any host share the journal: a lane keeps from its own process's fan-out only what it can
    start soon, and the others claim the rest (they hear of it through notices.py)."""

    def __init__(self, url: str, *, prefix: str = PREFIX, socket_timeout: float = SOCKET_TIMEOUT) -> None:
        self.url = url
        self.prefix = prefix
        self._socket_timeout = socket_timeout
        self._failures = Failures(url)
        self._link: Link | None = None
        self._sender = new_id()
        """This store's name on its notices, so that its followers skip them."""
        self._known_updates: dict[str, UpdateView] = {}
        """What claims read of recent updates (immutable once written), oldest first."""
        self._identity = ""
        """The journal's identity when this store last looked (layout.settle_layout)."""

    async def open(self) -> None:
        if self._link is not None:
            return
        client = new_client(self.url, socket_timeout=self._socket_timeout)
        try:
            with self._failures.guard("open", write=False):
                self._identity = await settle_layout(client, self.prefix)
            with self._failures.guard("open", write=False):
                seconds, microseconds = await client.time()
            warn_of_clock_skew(seconds + microseconds / 1e6 - time.time())
        except BaseException:
            await client.aclose()
            raise
        self._link = Link(client=client, scripts=Scripts(client), prefix=self.prefix)

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            with contextlib.suppress(StoreError), self._failures.guard("close", write=False):
                await link.client.aclose()

    @property
    def link(self) -> Link:
        if self._link is None:
            raise StoreError("the journal is not open")
        return self._link

    def follow(
        self,
        *,
        on_work: Callable[[], None],
        on_controls: Callable[[], None],
        on_holder_gone: Callable[[], None],
    ) -> AbstractAsyncContextManager[None]:
        """Through Redis pub/sub (notices.py). `on_holder_gone` is never called: a holder on another host
        cannot be watched, and its leases come back through `recover` when they run out."""
        return notices.follow(
            self.url, self.prefix + "notices", sender=self._sender, on_work=on_work, on_controls=on_controls
        )

    async def _announce(self, kind: str) -> None:
        await notices.announce(self.link.client, self.prefix + "notices", kind, self._sender)

    # --- writing updates

    async def accept_handing_off(
        self,
        draft: UpdateDraft,
        plan: Sequence[PlannedDelivery],
        handoff: Handoff | None,
        *,
        now: datetime,
        idempotency_key: str | None = None,
        request_digest: str | None = None,
        same_within: float | None = None,
    ) -> Accepted:
        with self._failures.guard("write", write=True):
            accepted = await accepting.accept(
                self.link,
                draft,
                plan,
                now=now,
                idempotency_key=idempotency_key,
                request_digest=request_digest,
                handoff=handoff,
                same_within=same_within,
            )
        if not accepted.duplicate:
            await self._announce(notices.WORK)
        if accepted.handed_off:  # later claims of this update's other deliveries need not read it again
            first = accepted.handed_off[0]
            self._remember(accepted.update.id, (first.incident, first.history))
        return accepted

    # --- the delivery queue

    async def finish_and_claim(
        self,
        outcomes: Sequence[Outcome],
        channel: str,
        *,
        ordering: Ordering,
        owner: str,
        limit: int,
        now: float,
        lease: float,
        skip_targets: Collection[str] = (),
        sweep: bool = True,
        updates: Collection[str] | None = None,
    ) -> ClaimResult:
        link = self.link
        # What this claim tells the script it knows, kept for this claim: another claim running meanwhile
        # may drop an update from the shared cache.
        known = dict(self._known_updates)
        with self._failures.guard("claim", write=True):
            reply = await link.run(
                link.scripts.claim,
                channel,
                ordering.value,
                owner,
                max(limit, 0),
                number(now),
                number(now + lease),
                "1" if sweep else "0",
                json.dumps([outcome_entry(o) for o in outcomes]),
                json.dumps(sorted(skip_targets)),
                "" if updates is None else json.dumps(sorted(updates)),
                json.dumps(list(known)),
            )
        claimed_rows, expired, superseded, views = map(listed, decoded(reply))
        for update_id, stored in views:
            known[update_id] = update_view(stored)
            self._remember(update_id, known[update_id])
        claimed = []
        for row, parent, progress in claimed_rows:
            delivery = delivery_from_row(row)
            incident, history = known[delivery.update_id]
            saved = progress or NO_PROGRESS  # a dict: cjson writes a table of keys as an object
            claimed.append(
                Claimed(delivery=delivery, incident=incident, history=history, thread_parent=parent, progress=saved)
            )
        return ClaimResult(
            claimed=claimed,
            expired=[delivery_from_row(row) for row in expired],
            superseded=[delivery_from_row(row) for row in superseded],
        )

    def _remember(self, update_id: str, view: UpdateView) -> None:
        known = self._known_updates
        known.pop(update_id, None)
        known[update_id] = view
        for old in list(known)[: max(0, len(known) - KNOWN_UPDATES)]:
            del known[old]

    async def finish(self, owner: str, outcomes: Sequence[Outcome]) -> int:
        link = self.link
        with self._failures.guard("write", write=True):
            recorded: int = await link.run(
                link.scripts.finish, owner, json.dumps([outcome_entry(o) for o in outcomes]), number(time.time())
            )
        return recorded

    async def release(self, owner: str, delivery_ids: Collection[str] | None, *, interrupted: str = "") -> int:
        link = self.link
        ids = "" if delivery_ids is None else json.dumps(list(delivery_ids))
        with self._failures.guard("write", write=True):
            released: int = await link.run(link.scripts.release, owner, ids, interrupted, number(time.time()))
        if released:
            await self._announce(notices.WORK)
        return released

    async def renew(self, owner: str, delivery_ids: Collection[str], *, until: float) -> None:
        link = self.link
        with self._failures.guard("write", write=True):
            await link.run(link.scripts.renew, owner, json.dumps(list(delivery_ids)), number(until))

    async def save_progress(self, owner: str, delivery_id: str, entries: Mapping[str, str]) -> None:
        link = self.link
        flat = [part for key, note in entries.items() for part in (key, note)]
        with self._failures.guard("write", write=True):
            saved = await link.run(link.scripts.save_progress, owner, delivery_id, json.dumps(flat))
        if not saved:
            raise LeaseLost(f"delivery {delivery_id} is no longer leased to this process; its progress was not saved")

    async def recover(self, *, now: float, owner_is_dead: Callable[[str], bool]) -> list[Delivery]:
        link = self.link
        with self._failures.guard("write", write=True):
            owners = await link.client.smembers(self.prefix + "owners")
            dead = sorted(owner for owner in map(text, owners) if owner_is_dead(owner))
            rows = decoded(await link.run(link.scripts.recover, number(now), json.dumps(dead)))
        if rows:
            await self._announce(notices.WORK)
        return [delivery_from_row(row) for row in rows]

    async def expire_due(self, *, now: float) -> list[Delivery]:
        link = self.link
        with self._failures.guard("write", write=True):
            rows = decoded(await link.run(link.scripts.expire_due, number(now)))
        return [delivery_from_row(row) for row in rows]

    async def requeue_failed(
        self, *, now: float, update_id: str | None = None, channel: str | None = None
    ) -> tuple[int, int]:
        link = self.link
        with self._failures.guard("write", write=True):
            requeued, too_old = await link.run(link.scripts.requeue_failed, number(now), update_id or "", channel or "")
        if requeued:
            await self._announce(notices.WORK)
        return int(requeued), int(too_old)

    # --- lane controls

    async def set_paused(self, channel: str, target: str, *, paused: bool, reason: str, now: float) -> None:
        link = self.link
        control = control_entry(paused=paused, reason=reason, now=now)
        with self._failures.guard("write", write=True):
            await link.run(link.scripts.set_paused, channel, target, "1" if paused else "0", control)
        await self._announce(notices.CONTROLS)

    # --- the fallback journal's way back (store.failover)

    async def reachable(self) -> None:
        with self._failures.guard("check", write=False):
            await self.link.client.ping()

    async def lost_its_data(self) -> bool:
        """The journal's identity changed since the last look: the server lost (or was flushed of) everything
        under the prefix, and the first store to look marked it anew."""
        client = self.link.client
        with self._failures.guard("check", write=False):
            identity = optional_text(await client.get(self.prefix + "journal"))
            if identity is None:
                identity = await settle_layout(client, self.prefix)
        if identity == self._identity:
            return False
        self._identity = identity
        return True

    async def adopt(self, copy: UpdateCopy, *, owner: str, now: float) -> bool:
        with self._failures.guard("write", write=True):
            adopted = await adopting.adopt(self.link, copy, owner=owner, now=now)
        if adopted:
            await self._announce(notices.WORK)
        return adopted
