"""Capabilities a store backend may add to the contract (store.base), and the calls that use them where a
backend offers them and fall back on the plain contract where it does not."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import Ordering
from broadcaster.store.values import Accepted, ClaimResult, Handoff, Outcome, PlannedDelivery

if TYPE_CHECKING:
    from broadcaster.store.base import Store


class BatchedClaims(ABC):
    """A backend that records outcomes and claims in one transaction: a busy lane's outcomes cost one write
    with its next claim instead of one each."""

    @abstractmethod
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
        """`finish(owner, outcomes)` and `claim(...)` in one transaction; without `sweep`, the claim leaves
        expiring to a later one (the lane sweeps every few claims, not on each)."""

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
        """WorkQueue.claim: this, with nothing to record."""
        return await self.finish_and_claim(
            (),
            channel,
            ordering=ordering,
            owner=owner,
            limit=limit,
            now=now,
            lease=lease,
            skip_targets=skip_targets,
            updates=updates,
        )


class HandsOff(ABC):
    """A backend that leases deliveries to the accepting process in the transaction that accepts them (see
    Handoff): a fan-out's first attempts start at once, without a claim re-reading the rows just written."""

    @abstractmethod
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
        """`accept`, leasing what `handoff` allows to its owner (Accepted.handed_off; nothing when None)."""

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
        """Journal.accept: this, handing nothing off."""
        return await self.accept_handing_off(
            draft,
            plan,
            None,
            now=now,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
            same_within=same_within,
        )


async def finish_and_claim(
    store: Store,
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
    """Record `outcomes` and claim: in one step where the store batches (BatchedClaims), else finish, then
    claim (which always sweeps)."""
    if isinstance(store, BatchedClaims):
        return await store.finish_and_claim(
            outcomes,
            channel,
            ordering=ordering,
            owner=owner,
            limit=limit,
            now=now,
            lease=lease,
            skip_targets=skip_targets,
            sweep=sweep,
            updates=updates,
        )
    if outcomes:
        await store.finish(owner, outcomes)
    return await store.claim(
        channel,
        ordering=ordering,
        owner=owner,
        limit=limit,
        now=now,
        lease=lease,
        skip_targets=skip_targets,
        updates=updates,
    )


async def accept_update(
    store: Store,
    draft: UpdateDraft,
    plan: Sequence[PlannedDelivery],
    *,
    now: datetime,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
    handoff: Handoff | None = None,
    same_within: float | None = None,
) -> Accepted:
    """Accept an update, leasing what `handoff` allows where the store can (HandsOff); elsewhere the lanes
    claim it all."""
    if handoff is not None and isinstance(store, HandsOff):
        return await store.accept_handing_off(
            draft,
            plan,
            handoff,
            now=now,
            idempotency_key=idempotency_key,
            request_digest=request_digest,
            same_within=same_within,
        )
    return await store.accept(
        draft, plan, now=now, idempotency_key=idempotency_key, request_digest=request_digest, same_within=same_within
    )
