"""What an operator does to running lanes, from any entry point (the CLI, the API, the ledger's buttons):
pause and resume a channel or one of its targets, and give failed deliveries fresh attempts; and which of
the mirror's targets a pause holds (a render leaves those alone)."""

from __future__ import annotations

from broadcaster.domain.errors import InputError, NotFoundError
from broadcaster.runtime import Runtime


async def set_paused(runtime: Runtime, channel: str, target: str, *, paused: bool, reason: str) -> None:
    """Pause (or resume) `channel`, or only its `target` when one is named. Every process's lanes see it
    at their next poll. Raises NotFoundError for an unknown channel, InputError for an unknown target."""
    spec = runtime.registry.get(channel)
    if target:
        targets = spec.targets(runtime.settings)
        if target not in targets:
            known = ", ".join(targets) or "none configured"
            raise NotFoundError(f"{channel} has no target {target!r} (targets: {known})", {"target": "unknown"})
    await runtime.store.set_paused(spec.name, target, paused=paused, reason=reason, now=runtime.clock())


async def requeue_failed(runtime: Runtime, *, update_id: str | None, channel: str | None) -> tuple[int, int]:
    """Failed deliveries (of one update, or one channel) back in the queue with fresh attempts, within their
    time-to-live. Returns (requeued, too old to requeue)."""
    if channel is not None:
        runtime.registry.get(channel)  # an unknown channel is a typo: refuse it rather than do nothing
    if update_id is not None:
        await runtime.store.update(update_id)  # NotFoundError naming the id
    if channel is not None and channel not in runtime.active_channels():
        raise InputError(f"channel {channel!r} is not enabled", {"channel": "not enabled"})
    return await runtime.store.requeue_failed(now=runtime.clock(), update_id=update_id, channel=channel)


async def paused_mirror_targets(runtime: Runtime) -> set[str]:
    """The mirror's targets a pause holds: a render leaves them as they are, as the lane does."""
    held = {c.target for c in await runtime.store.controls() if c.channel == "mirror" and c.paused}
    if "" in held:  # the whole channel
        return set(runtime.registry.get("mirror").targets(runtime.settings))
    return held
