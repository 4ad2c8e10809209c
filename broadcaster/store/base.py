"""The store contract every backend implements: what it records (Journal), how it hands out work
(WorkQueue), the capabilities a backend may add (BatchedClaims, HandsOff), and the calls that use them
where they exist. The values it takes and gives are in store.values.

All scheduling times are epoch seconds (floats); incident and update times are aware datetimes."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from broadcaster.domain.errors import StoreError
from broadcaster.domain.models import Incident, IncidentHistory, Update, UpdateDraft
from broadcaster.domain.statuspage import IncidentSummary
from broadcaster.domain.subscriptions import Subscriber, SubscriberKind
from broadcaster.domain.uptime import ComponentUpdate
from broadcaster.domain.vocabulary import Ordering
from broadcaster.store.capabilities import BatchedClaims, HandsOff, accept_update, finish_and_claim
from broadcaster.store.values import (
    NO_PROGRESS,
    Accepted,
    Attempt,
    Claimed,
    ClaimResult,
    Delivery,
    DeliveryCopy,
    Handoff,
    KeyedRequest,
    LaneControl,
    Outcome,
    PlannedDelivery,
    Standing,
    UpdateCopy,
)

__all__ = [
    "NO_PROGRESS",
    "Accepted",
    "Attempt",
    "BatchedClaims",
    "ClaimResult",
    "Claimed",
    "Delivery",
    "DeliveryCopy",
    "Handoff",
    "HandsOff",
    "Journal",
    "KeyedRequest",
    "LaneControl",
    "Outcome",
    "PlannedDelivery",
    "Standing",
    "Store",
    "UpdateCopy",
    "WorkQueue",
    "accept_update",
    "finish_and_claim",
]


class Journal(ABC):
    """What the store records: incidents and their updates, the delivery ledger and what the status site and
    the ledger read of them, and the side records sending needs (suppressions, subscribers, publish
    manifests, pauses, web sessions). Shared by every process that uses it."""

    url: str

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    def standing(self) -> Standing:
        """Whether this store runs degraded (store.failover); a journal that is its only copy never does."""
        return Standing()

    async def reachable(self) -> None:
        """Raise StoreUnreachable unless the journal's server answers now (a cheap round trip); a journal
        on this host's disk has no server to lose."""
        return None

    async def lost_its_data(self) -> bool:
        """Whether the journal's server came back without what it held (a Redis restarted with no persisted
        data), marking it again so the next look says False; never, for a journal on this host's disk."""
        return False

    async def adopt(self, copy: UpdateCopy, *, owner: str, now: float) -> bool:
        """Journal an update accepted into another journal, keeping its ids, and record what was done with its
        deliveries there, in one step (so none is handed out again); False when it is here already. The
        incident takes it as transitions.adopt_update says. Raises StoreError where the backend cannot."""
        raise StoreError(f"this journal ({type(self).__name__}) cannot adopt updates journaled elsewhere")

    # --- writing updates

    @abstractmethod
    async def accept(
        self,
        draft: UpdateDraft,
        plan: Sequence[PlannedDelivery],
        *,
        now: datetime,
        idempotency_key: str | None = None,
        request_digest: str | None = None,
        same_within: float | None = None,
    ) -> Accepted:
        """Validate `draft` against the incident, journal the update and plan its deliveries in one
        durable transaction; supersede older queued deliveries of LATEST_ONLY channels. Raises InputError
        (nothing journaled) when the update is not acceptable. An `idempotency_key` seen before answers the
        update it made (Accepted.duplicate), unless `request_digest` says the request differed from that
        one's: ConflictError. With `same_within`, an update of the same content (domain.drafts.content_digest)
        accepted in the last `same_within` seconds, through any intake, is answered the same way."""

    # --- reading

    @abstractmethod
    async def incident(self, incident_id: str) -> Incident:
        """Raises NotFoundError."""

    @abstractmethod
    async def incidents(self, *, limit: int = 50, open_only: bool = False) -> list[Incident]:
        """Most recently updated first."""

    @abstractmethod
    async def history(self, incident_id: str) -> IncidentHistory: ...

    @abstractmethod
    async def site_history(self, *, recent: int | None) -> list[IncidentHistory]: ...

    @abstractmethod
    async def incident_summaries(self) -> list[IncidentSummary]:
        """Every incident and maintenance without its updates (the status site's history page), any order."""

    @abstractmethod
    async def component_updates(self, *, since: datetime) -> list[ComponentUpdate]:
        """Every update, without its message, of each incident open at `since` or updated since (the
        components' uptime from `since` on), any order: bounded by the window, not by the journal's age."""

    @abstractmethod
    async def update(self, update_id: str) -> Update:
        """Raises NotFoundError."""

    @abstractmethod
    async def deliveries(
        self, *, update_id: str | None = None, incident_id: str | None = None, open_only: bool = False
    ) -> list[Delivery]: ...

    @abstractmethod
    async def attempts(self, delivery_id: str) -> list[Attempt]: ...

    @abstractmethod
    async def backlog(self) -> dict[str, tuple[int, float]]:
        """Per channel with open deliveries: how many (pending or in flight), and when the oldest of them was
        accepted (epoch seconds). One aggregate read, bounded by outstanding work."""

    @abstractmethod
    async def overdue(self, *, now: datetime, limit: int) -> list[Incident]:
        """Open incidents whose next update was due by `now`, the longest overdue first, at most `limit`."""

    @abstractmethod
    async def keyed_requests(self) -> list[KeyedRequest]:
        """Every idempotency key the journal answers, any order: what a copy of it needs so that a request sent
        again to the copy answers the update it made here, not a second one."""

    # --- suppressions

    @abstractmethod
    async def suppress(self, entries: Mapping[str, str], *, source: str, now: float) -> int:
        """Never mail these addresses (lower-cased -> why) again; returns how many were not suppressed yet."""

    @abstractmethod
    async def suppressed(self) -> frozenset[str]:
        """Every suppressed address, lower-cased."""

    @abstractmethod
    async def is_suppressed(self, address: str) -> bool:
        """Whether one address is on the list: one lookup, where `suppressed` reads them all."""

    @abstractmethod
    async def unsuppress(self, address: str) -> bool:
        """Mail `address` again (its owner confirmed a new subscription); False when it was not suppressed."""

    # --- subscribers (confirmed ones; the subscribers file is the operator's own list, outside the journal)

    @abstractmethod
    async def save_subscribers(self, subscribers: Sequence[Subscriber]) -> int:
        """Add subscribers, each replacing the one of the same kind and address if there is one, in one
        write; returns how many were new."""

    @abstractmethod
    async def remove_subscriber(self, kind: SubscriberKind, address: str) -> bool:
        """False when there was no such subscriber."""

    @abstractmethod
    async def subscriber(self, kind: SubscriberKind, address: str) -> Subscriber | None: ...

    @abstractmethod
    async def subscribers(self, kind: SubscriberKind) -> list[Subscriber]:
        """Every subscriber of `kind`, by address. A fan-out reads them all once, so this is one read."""

    # --- publish manifests (the mirror's record of what each publish target holds)

    @abstractmethod
    async def publish_manifest(self, target: str) -> Mapping[str, str] | None:
        """What `target` was last published with (path -> content hash); None if never saved."""

    @abstractmethod
    async def save_publish_manifest(self, target: str, manifest: Mapping[str, str]) -> None:
        """Replace `target`'s manifest, durably."""

    # --- lane controls

    @abstractmethod
    async def set_paused(self, channel: str, target: str, *, paused: bool, reason: str, now: float) -> None: ...

    @abstractmethod
    async def controls(self) -> list[LaneControl]: ...

    # --- copies

    @abstractmethod
    async def snapshot_to(self, path: Path) -> None:
        """Write a consistent copy of the whole journal to `path` (a new file) as a SQLite journal, while
        other processes go on using this one: what a fallback kit carries (`broadcaster kit`). Raises
        StoreError when this backend cannot."""

    # --- web sessions (signed cookies; the journal keeps only what must be refused)

    @abstractmethod
    async def revoke_session(self, session_id: str, *, until: float) -> None:
        """Refuse `session_id` from now on, on every instance, until `until` (when it expires anyway)."""

    @abstractmethod
    async def session_revoked(self, session_id: str, *, now: float) -> bool:
        """Whether `session_id` was revoked, with an `until` still ahead of `now`."""

    @abstractmethod
    async def redeem_once(self, purpose: str, nonce: str, *, now: float, until: float) -> bool:
        """True the first time (`purpose`, `nonce`) is redeemed on any instance (a single-use login link);
        False for every later try while `now` is before `until`. After `until` it is forgotten: what it
        redeems (a signed token) has expired by then."""


class WorkQueue(ABC):
    """How the store hands out work: deliveries are leased, never deleted on dequeue. `claim` marks them in
    flight for one owner until `lease_until`, in order per target (IN_ORDER) or newest only (LATEST_ONLY),
    superseding and expiring as it goes; an outcome ends a lease or sets a retry; a crashed owner's leases
    are handed back by `recover`."""

    shared_by_instances: ClassVar[bool] = False
    """Instances on other hosts take work from this store too: a lane then takes from an update its process
    accepts only what it can start soon (Handoff), leaving the rest of a fan-out to be claimed by any."""

    def follow(
        self,
        *,
        on_work: Callable[[], None],
        on_controls: Callable[[], None],
        on_holder_gone: Callable[[], None],
    ) -> AbstractAsyncContextManager[None]:
        """While inside, be told at once of what other processes do: `on_work` when they journal work this
        process may take (an update, a requeue, leases handed back), `on_controls` when they pause or resume,
        `on_holder_gone` when one that held leases is gone. A backend that cannot tell says nothing: the lanes
        find new work and pauses at their next poll, and a dead holder's leases are taken back when they run
        out."""
        return contextlib.nullcontext()

    @abstractmethod
    async def claim(
        self,
        channel: str,
        *,
        ordering: Ordering,
        owner: str,
        limit: int,
        now: float,
        lease: float,
        skip_targets: Collection[str] = (),
        updates: Collection[str] | None = None,
    ) -> ClaimResult:
        """In one transaction: supersede what a newer update replaced (LATEST_ONLY), expire what is past its
        TTL, then lease up to `limit` due, unexpired deliveries whose turn it is (nothing earlier still open
        for the same target, or for the same target and incident when LATEST_ONLY), leaving out `skip_targets`
        and what the journal's pauses hold (read in the claim: a pause holds from the moment it is journaled).

        `updates` limits the lease to those updates' deliveries and, for IN_ORDER channels, the earlier
        deliveries that hold them back (open, to the same target): what a `send` needs to get its own
        update out, and nothing else."""

    @abstractmethod
    async def finish(self, owner: str, outcomes: Sequence[Outcome]) -> int:
        """Record attempts' outcomes; returns how many leases were still ours to record."""

    @abstractmethod
    async def release(self, owner: str, delivery_ids: Collection[str] | None, *, interrupted: str = "") -> int:
        """Hand leases back to the queue, due at once, without counting their attempt (all of the owner's
        leases when `delivery_ids` is None). With `interrupted` (why), the attempt had started: the ledger
        logs it as interrupted, so every attempt made shows there."""

    @abstractmethod
    async def renew(self, owner: str, delivery_ids: Collection[str], *, until: float) -> None: ...

    @abstractmethod
    async def save_progress(self, owner: str, delivery_id: str, entries: Mapping[str, str]) -> None:
        """Add `entries` (key -> value; "" marks a step that went through) to what a leased delivery has done;
        saved for good when this returns (it survives the process being killed). Raises LeaseLost, saving
        nothing, when `owner` no longer holds the lease. Progress is pruned once the delivery can no longer
        be attempted (delivered, superseded, or past its time-to-live): entries with a value are kept."""

    @abstractmethod
    async def recover(self, *, now: float, owner_is_dead: Callable[[str], bool]) -> list[Delivery]:
        """Return to the queue deliveries whose lease has run out or whose owner is known dead."""

    @abstractmethod
    async def expire_due(self, *, now: float) -> list[Delivery]:
        """Record as expired every queued delivery past its TTL, whatever its lane is doing."""

    @abstractmethod
    async def requeue_failed(
        self, *, now: float, update_id: str | None = None, channel: str | None = None
    ) -> tuple[int, int]:
        """Give failed deliveries a fresh set of attempts. Returns (requeued, too old to requeue)."""


class Store(Journal, WorkQueue):
    """A journal backend: what it records and how it hands out work. Batching outcomes into claims
    (BatchedClaims) and leasing at acceptance (HandsOff) are capabilities a backend may add; callers go
    through `finish_and_claim` and `accept_update`, which fall back on the plain contract."""
