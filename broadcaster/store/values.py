"""The values the store contract takes and gives (store.base): planned and journaled deliveries, claims,
outcomes, attempts, copies of an update for another journal, idempotency keys, and a store's standing.

All scheduling times are epoch seconds (floats); incident and update times are aware datetimes."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from broadcaster.domain.models import Incident, Update
from broadcaster.domain.records import record
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
class KeyedRequest:
    """An idempotency key and the update it answers, with the digest of the request that made that update (the
    same key with another request is refused)."""

    key: str
    update_id: str
    request_digest: str | None


@dataclass(frozen=True, slots=True)
class Standing:
    """Whether a store runs on its own (a shared store out of reach, a fallback journal taking its place),
    since when (epoch seconds), why, and how many updates and records wait to go back to the shared one."""

    degraded: bool = False
    since: float | None = None
    reason: str = ""
    waiting: int = 0
    accepted: int = 0
    """Updates accepted into the fallback journal meanwhile, not given back yet."""
    returns: int = 0
    """Times it came back from running degraded, since it opened (one missed between two looks still counts)."""


@dataclass(frozen=True, slots=True)
class LaneControl:
    """A pause on a whole channel (target "") or on one of its targets."""

    channel: str
    target: str
    paused: bool
    reason: str
    updated_at: float
