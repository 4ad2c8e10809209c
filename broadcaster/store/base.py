"""The journal interface every backend implements, and the records it hands out.

All scheduling times are epoch seconds (floats); incident and update times are aware datetimes."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, Final

from broadcaster.domain.errors import StoreError
from broadcaster.domain.models import Incident, IncidentHistory, Update, UpdateDraft
from broadcaster.domain.records import record
from broadcaster.domain.statuspage import IncidentSummary
from broadcaster.domain.subscriptions import Subscriber, SubscriberKind
from broadcaster.domain.uptime import ComponentUpdate
from broadcaster.domain.vocabulary import DeliveryState, Ordering


@record
class PlannedDelivery:
    """A delivery to create when an update is accepted."""

    channel: str
    target: str
    ordering: Ordering
    max_attempts: int
    ttl: float


@record
class Delivery:
    """One update for one target of one channel, and where it stands."""

    id: str
    update_id: str
    incident_id: str
    update_seq: int
    channel: str
    target: str
    state: DeliveryState
    attempts: int
    max_attempts: int
    created_at: float
    not_before: float
    expires_at: float
    finished_at: float | None
    last_error: str
    detail: str
    external_id: str | None


NO_PROGRESS: Final[Mapping[str, str]] = MappingProxyType({})
"""The progress of a delivery that has saved none: one shared, read-only empty mapping."""


@record
class Claimed:
    """A delivery leased to one worker, with everything its channel needs."""

    delivery: Delivery
    incident: Incident
    history: tuple[Update, ...]
    thread_parent: str | None
    progress: Mapping[str, str]
    """What earlier attempts saved through `save_progress`: key -> note ("" for a step that went through)."""

    @property
    def update(self) -> Update:
        return self.history[-1]


@dataclass(frozen=True, slots=True)
class Handoff:
    """Leases that the accepting process's own lanes take in the transaction that accepts an update, so
    its first attempts start at once instead of after a claim: each claim would lease again the rows just
    written, one by one (for a 1,000-target fan-out, more journal work than accepting them).

    `room` says how many deliveries each channel's lane can take now (channels not named take none);
    `skip_targets`, which targets it must not be handed (behind an open breaker, say). Nothing paused in
    the journal is handed off, nor a delivery whose target still has an earlier delivery open: it waits
    its turn in the queue, as any claim would leave it."""

    owner: str
    lease_until: float
    room: Mapping[str, int]
    skip_targets: Mapping[str, Collection[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The result of accepting an update. `duplicate`: the update was accepted before and that one is
    returned; nothing new was journaled. `handed_off`: the deliveries leased to the
    accepting process's lanes (see Handoff), already in `deliveries` as in flight."""

    incident: Incident
    update: Update
    deliveries: tuple[Delivery, ...]
    superseded: tuple[Delivery, ...]
    duplicate: bool = False
    """The update was accepted before (the same idempotency key, or the same content within `same_within`)."""
    handed_off: tuple[Claimed, ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claimed: list[Claimed]
    expired: list[Delivery]
    superseded: list[Delivery]


@record
class Outcome:
    """How one attempt ended. `state` is DELIVERED, FAILED, EXPIRED, or PENDING for a retry at `not_before`."""

    delivery_id: str
    state: DeliveryState
    attempt: int
    started_at: float
    finished_at: float
    not_before: float | None = None
    error: str = ""
    detail: str = ""
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: str
    number: int
    started_at: float | None
    finished_at: float
    outcome: str
    error: str


@dataclass(frozen=True, slots=True)
class DeliveryCopy:
    """A delivery as another journal holds it, with what adopting it needs beside its fields."""

    delivery: Delivery
    ordering: Ordering
    attempts: tuple[Attempt, ...]
    progress: Mapping[str, str] = field(default_factory=dict)
    """What its attempts saved (save_progress): a retry in the other journal resumes from it."""


@dataclass(frozen=True, slots=True)
class UpdateCopy:
    """An update journaled elsewhere (a fallback journal), for `Store.adopt`: the update with its ids, the
    incident as it stood right after it there, and its deliveries as they stand there."""

    incident: Incident
    update: Update
    deliveries: tuple[DeliveryCopy, ...]
    idempotency_key: str | None = None
    request_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Standing:
    """Whether a store runs on its own (a shared store out of reach, a fallback journal taking its place),
    since when (epoch seconds), why, and how many updates and records wait to go back to the shared one."""

    degraded: bool = False
    since: float | None = None
    reason: str = ""
    waiting: int = 0


@dataclass(frozen=True, slots=True)
class LaneControl:
    """A pause on a whole channel (target "") or on one of its targets."""

    channel: str
    target: str
    paused: bool
    reason: str
    updated_at: float


class Store(ABC):
    """The durable journal of incidents, updates and deliveries, shared by every process that uses it.

    Deliveries are leased, never deleted on dequeue: `claim` marks them in flight for one owner until
    `lease_until`; a crashed owner's leases are handed back by `recover`."""

    url: str
    shared_by_instances: ClassVar[bool] = False
    """Instances on other hosts take work from this store too: a lane then takes from an update its process
    accepts only what it can start soon (Handoff), leaving the rest of a fan-out to be claimed by any."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

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
        handoff: Handoff | None = None,
        same_within: float | None = None,
    ) -> Accepted:
        """Validate `draft` against the incident, journal the update and plan its deliveries in one
        durable transaction; supersede older queued deliveries of LATEST_ONLY channels; lease what
        `handoff` allows to its owner. Raises InputError (nothing journaled) when the update is not
        acceptable. An `idempotency_key` seen before answers the update it made (Accepted.duplicate),
        unless `request_digest` says the request differed from that one's: ConflictError. With
        `same_within`, an update of the same content (domain.drafts.content_digest) accepted in the last
        `same_within` seconds, through any intake, is answered the same way."""

    # --- the delivery queue

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

    def standing(self) -> Standing:
        """Whether this store runs degraded (store.failover); a journal that is its only copy never does."""
        return Standing()

    async def reachable(self) -> None:
        """Raise StoreUnreachable unless the journal's server answers now (a cheap round trip); a journal
        on this host's disk has no server to lose."""
        return None

    async def adopt(self, copy: UpdateCopy, *, owner: str, now: float) -> bool:
        """Journal an update accepted into another journal, keeping its ids, and record what was done with its
        deliveries there, in one step (so none is handed out again); False when it is here already. The
        incident takes it as transitions.adopt_update says. Raises StoreError where the backend cannot."""
        raise StoreError(f"this journal ({type(self).__name__}) cannot adopt updates journaled elsewhere")

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
        sweep: bool = True,
        record: Sequence[Outcome] = (),
        updates: Collection[str] | None = None,
    ) -> ClaimResult:
        """In one transaction: record `record` (as `finish` does), supersede what a newer update replaced
        (LATEST_ONLY), expire what is past its TTL (when `sweep`), then lease up to `limit` due,
        unexpired deliveries whose turn it is (nothing earlier still open for the same target, or for
        the same target and incident when LATEST_ONLY).

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
