"""What every entry point (CLI, service) needs: the settings, an open journal, the channel registry,
this process's identity as a lease owner, and the one way to submit an update."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from broadcaster.domain.errors import InputError, StoreError
from broadcaster.domain.models import UpdateDraft
from broadcaster.store import Accepted, Handoff, PlannedDelivery, Store, open_store
from broadcaster.store.base import accept_update
from broadcaster.store.owners import new_owner, owner_is_dead
from channels.registry import ChannelRegistry, default_registry
from config import CHANNEL_NAMES, ConfigError, Settings

log = logging.getLogger("broadcaster.runtime")


@dataclass
class Runtime:
    settings: Settings
    store: Store
    registry: ChannelRegistry = field(default_factory=default_registry)
    owner: str = field(default_factory=new_owner)
    clock: Callable[[], float] = time.time
    drill: bool = False
    """Everything this runtime sends is a drill (`broadcaster drill`): its channels are told so."""

    def active_channels(self) -> list[str]:
        """The enabled channels, checked against what this build has."""
        for name in CHANNEL_NAMES:
            section = getattr(self.settings, name)
            if section.enabled and name not in self.registry:
                raise ConfigError(f"[{name}] enabled = true, but this build has no {name} channel yet")
        return [spec.name for spec in self.registry.enabled(self.settings)]

    def plan(self, channels: list[str] | None) -> list[PlannedDelivery]:
        """One delivery per target of every chosen channel (default: every enabled one)."""
        active = self.active_channels()
        chosen = active if channels is None else channels
        for name in chosen:
            self.registry.get(name)  # raises for an unknown channel
            if name not in active:
                raise InputError(f"channel {name!r} is not enabled in the configuration", {"channels": name})
        plan = []
        for name in chosen:
            spec = self.registry.get(name)
            policy = self.settings.lane_policy(name)
            plan += [
                PlannedDelivery(
                    channel=name,
                    target=target,
                    ordering=spec.ordering,
                    max_attempts=policy.max_attempts,
                    ttl=policy.ttl,
                )
                for target in spec.targets(self.settings)
            ]
        if not plan:
            raise InputError("no channel is enabled: nothing would be sent", {"channels": "none enabled"})
        return plan

    async def submit(
        self,
        draft: UpdateDraft,
        *,
        idempotency_key: str | None = None,
        request_digest: str | None = None,
        handoff: Handoff | None = None,
        same_within: float | None = None,
    ) -> Accepted:
        """Journal an update and plan its deliveries; durable when this returns. Dispatcher.submit is the
        same with its lanes taking the deliveries at once."""
        plan = self.plan(draft.channels)
        return await accept_update(
            self.store,
            draft,
            plan,
            now=datetime.fromtimestamp(self.clock(), UTC),
            idempotency_key=idempotency_key,
            request_digest=request_digest,
            handoff=handoff,
            same_within=same_within,
        )

    async def close(self) -> None:
        """Hand back whatever this process still holds, then close the journal. Lanes that stopped cleanly
        held nothing more; this is the guarantee that no lease outlives the process that took it."""
        try:
            left = await self.store.release(self.owner, None)
        except StoreError as exc:
            log.error("cannot hand back this process's leases (the next run takes them back): %s", exc)
        else:
            if left:
                log.warning("handed back %d deliveries still leased by this process at exit", left)
        await self.store.close()


async def open_runtime(
    settings: Settings, *, registry: ChannelRegistry | None = None, drill: bool = False, serving: bool = False
) -> Runtime:
    """Open the journal and take back deliveries that a dead process of this host left in flight. `serving`:
    for `serve`, which goes on from a local replica while a shared journal is out of reach ([store] replica)."""
    registry = registry or default_registry()
    store = open_store(settings.store_url)
    if serving and store.shared_by_instances and settings.store.replica:
        store = with_replica(store, settings, registry)
    await store.open()
    runtime = Runtime(settings, store, registry, drill=drill)
    await store.recover(now=runtime.clock(), owner_is_dead=owner_is_dead)
    return runtime


def with_replica(shared: Store, settings: Settings, registry: ChannelRegistry) -> Store:
    """`shared` behind a failover store with a replica in the data directory."""
    from broadcaster.store.failover import FailoverStore
    from config.publish import target_name

    return FailoverStore(
        shared,
        settings.service.data_dir,
        orderings={spec.name: spec.ordering for spec in registry.enabled(settings)},
        publish_targets=[target_name(target) for target in settings.mirror.publish],
        refresh_every=settings.store.replica_refresh,
    )
