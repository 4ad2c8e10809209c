"""`broadcaster send` and `broadcaster retry`: deliver in this process, no server and no Redis needed."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from broadcaster.cli.drafts import draft_from_args
from broadcaster.cli.output import deliveries_table, delivery_json, print_json
from broadcaster.cli.progress import Progress
from broadcaster.dispatch import Dispatcher
from broadcaster.domain.vocabulary import ComponentState, DeliveryState
from broadcaster.runtime import Runtime
from broadcaster.store import Delivery

EXIT_DELIVERED = 0
EXIT_NOT_DELIVERED = 3
CLI_DRAIN = 5.0
"""Seconds `send` and `retry` give the attempts in hand to finish once they stop delivering (--wait is
over, or everything settled), before handing what still runs back to the journal."""


async def send(args: argparse.Namespace, runtime: Runtime) -> int:
    affected: list[str] = []
    if args.template is not None and args.incident and not args.component:  # the template speaks of these
        incident = await runtime.store.incident(args.incident)
        affected = [name for name, state in incident.components.items() if state is not ComponentState.OPERATIONAL]
    now = datetime.fromtimestamp(runtime.clock(), UTC)
    draft = draft_from_args(args, now=now, templates=runtime.settings.templates, affected=affected)
    channels = sorted({p.channel for p in runtime.plan(draft.channels)}, key=runtime.registry.names().index)
    progress = Progress(sys.stderr, [], live=sys.stderr.isatty() and not args.json, clock=runtime.clock)
    # Channels are built before anything is journaled, so a channel that cannot start is a
    # configuration error (exit 2) rather than an accepted update that cannot go out. The lanes take this
    # update's deliveries, and on in-order channels the earlier ones to the same targets that must go first,
    # nothing else: other updates' work is for `retry` and the service.
    async with Dispatcher(runtime, channels=channels, observe=progress, updates=set(), drain=CLI_DRAIN) as dispatcher:
        accepted = await dispatcher.submit(draft, idempotency_key=args.idempotency_key)
        incident, update = accepted.incident, accepted.update
        if accepted.duplicate:
            print(
                f"Already journaled as update {update.id} (same --idempotency-key); not sent again.",
                file=sys.stderr,
            )
        print(
            f"Journaled update {update.id} of incident {incident.id} ({incident.name}): {update.status.value}",
            file=sys.stderr,
        )
        progress.follow(accepted.deliveries)  # before any await: the lanes have not started on them yet
        async with progress:
            await dispatcher.settle([update.id], wait=args.wait)
    deliveries = await runtime.store.deliveries(update_id=update.id)
    if args.json:
        print_json(
            {"update_id": update.id, "incident_id": incident.id, "deliveries": [delivery_json(d) for d in deliveries]}
        )
    else:
        deliveries_table(deliveries)
    return conclude(deliveries)


async def retry(args: argparse.Namespace, runtime: Runtime) -> int:
    store = runtime.store
    chosen = args.channel or None
    for name in chosen or []:
        runtime.registry.get(name)  # an unknown channel is a typo: refuse it (exit 2) rather than do nothing
    if args.failed:
        for channel in chosen or [None]:
            requeued, too_old = await store.requeue_failed(now=runtime.clock(), update_id=args.update, channel=channel)
            if requeued or too_old:
                past_ttl = f"; {too_old} are past their time-to-live and stay failed" if too_old else ""
                print(f"Requeued {requeued} failed deliveries{past_ttl}.", file=sys.stderr)
    waiting = [
        d
        for d in await store.deliveries(update_id=args.update, open_only=True)
        if chosen is None or d.channel in chosen
    ]
    if not waiting:
        print("Nothing is waiting to be delivered.", file=sys.stderr)
        return EXIT_DELIVERED
    active = set(runtime.active_channels())
    idle = Counter(d.channel for d in waiting if d.channel not in active)
    for channel, count in idle.items():
        print(f"{count} deliveries wait for channel {channel!r}, which is not enabled.", file=sys.stderr)
    channels = [name for name in runtime.registry.names() if name in active and any(d.channel == name for d in waiting)]
    progress = Progress(sys.stderr, waiting, live=sys.stderr.isatty() and not args.json, clock=runtime.clock)
    print(f"Delivering {len(waiting)} waiting deliveries on {', '.join(channels) or 'no channel'}.", file=sys.stderr)
    only = None if args.update is None else {args.update}
    dispatching = Dispatcher(runtime, channels=channels, observe=progress, updates=only, drain=CLI_DRAIN)
    async with dispatching as dispatcher, progress:
        dispatcher.wake()
        await dispatcher.settle({d.update_id for d in waiting}, wait=args.wait)
    followed = {d.id for d in waiting}
    after = [
        d
        for update_id in sorted({d.update_id for d in waiting})
        for d in await store.deliveries(update_id=update_id)
        if d.id in followed
    ]
    if args.json:
        print_json({"deliveries": [delivery_json(d) for d in after]})
    else:
        deliveries_table(after)
    return conclude(after)


def conclude(deliveries: Sequence[Delivery]) -> int:
    """Exit 0 when every target got this update or a newer one of the same incident (superseded is the
    lane doing its job); 3 when anything is still pending or failed or expired."""
    counts = Counter(d.state for d in deliveries)
    total = len(deliveries)
    done = counts[DeliveryState.DELIVERED] + counts[DeliveryState.SUPERSEDED]
    if done == total:
        newer = counts[DeliveryState.SUPERSEDED]
        note = f" ({newer} superseded by a newer update of the incident)" if newer else ""
        print(f"Delivered on all {total} targets{note}.", file=sys.stderr)
        return EXIT_DELIVERED
    parts = ", ".join(
        f"{count} {state.value}" for state, count in sorted(counts.items()) if state is not DeliveryState.DELIVERED
    )
    print(f"Not delivered everywhere ({parts}).", file=sys.stderr)
    if counts[DeliveryState.PENDING] or counts[DeliveryState.IN_FLIGHT]:
        print(
            "Pending deliveries stay in the journal: `broadcaster retry` or `broadcaster serve` resumes them.",
            file=sys.stderr,
        )
    if counts[DeliveryState.FAILED]:
        print("Failed deliveries can be tried again with `broadcaster retry --failed`.", file=sys.stderr)
    return EXIT_NOT_DELIVERED
