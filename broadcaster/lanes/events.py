"""What a lane reports: an event per change of a delivery (once it is in the journal), and its status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from broadcaster.domain.records import record
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store.base import Delivery

log = logging.getLogger("broadcaster.lane")


class EventKind(StrEnum):
    STARTED = "started"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"
    INTERRUPTED = "interrupted"
    """Handed back to the queue, unfinished, because the lane stopped."""


@record
class LaneEvent:
    """Something that happened to a delivery, reported once it is in the journal."""

    kind: EventKind
    delivery: Delivery
    attempt: int
    detail: str = ""
    not_before: float | None = None


def event_of(kind: EventKind, delivery: Delivery, detail: str = "", not_before: float | None = None) -> LaneEvent:
    """The event `kind` for a delivery at its current attempt."""
    return LaneEvent(kind=kind, delivery=delivery, attempt=delivery.attempts, detail=detail, not_before=not_before)


Observer = Callable[[LaneEvent], None]


def observing(observe: Observer | None, lane: str) -> Observer:
    """`observe`, made safe to call: an observer that fails is logged, never the lane's problem."""

    def notify(event: LaneEvent) -> None:
        if observe is None:
            return
        try:
            observe(event)
        except Exception:
            log.exception("%s lane: observer failed on %s", lane, event.kind)

    return notify


EVENT_OF_STATE: Final = {
    DeliveryState.PENDING: EventKind.RETRYING,
    DeliveryState.DELIVERED: EventKind.DELIVERED,
    DeliveryState.FAILED: EventKind.FAILED,
    DeliveryState.EXPIRED: EventKind.EXPIRED,
    DeliveryState.SUPERSEDED: EventKind.SUPERSEDED,
}
"""The event an outcome in each state reports."""

STATE_AFTER: Final = {
    EventKind.STARTED: DeliveryState.IN_FLIGHT,
    EventKind.DELIVERED: DeliveryState.DELIVERED,
    EventKind.RETRYING: DeliveryState.PENDING,
    EventKind.FAILED: DeliveryState.FAILED,
    EventKind.EXPIRED: DeliveryState.EXPIRED,
    EventKind.SUPERSEDED: DeliveryState.SUPERSEDED,
    EventKind.INTERRUPTED: DeliveryState.PENDING,
}
"""The state a delivery is in after each event."""


@dataclass(frozen=True, slots=True)
class LaneStatus:
    channel: str
    paused: bool
    paused_targets: frozenset[str]
    in_flight: int
    open_breakers: dict[str, float] = field(default_factory=dict)
