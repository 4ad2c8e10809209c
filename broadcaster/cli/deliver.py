"""`broadcaster send` and `broadcaster retry`: deliver in this process, no server and no Redis needed."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections import Counter
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from broadcaster.cli.admin import known_incident, known_update
from broadcaster.cli.drafts import draft_from_args, one_of, typed_digest
from broadcaster.cli.output import deliveries_report, delivery_json, print_json
from broadcaster.cli.parser import DEFAULT_WAIT, MAX_WAIT
from broadcaster.cli.progress import Pauses, Progress, pauses_holding
from broadcaster.cli.streams import write_or_drop
from broadcaster.dispatch import Dispatcher
from broadcaster.domain.errors import ConflictError
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import ComponentState, DeliveryState
from broadcaster.runtime import Runtime
from broadcaster.store import Accepted, Delivery

EXIT_DELIVERED = 0
EXIT_NOT_DELIVERED = 3
CLI_DRAIN = 5.0
"""Seconds `send` and `retry` give the attempts in hand to finish once they stop delivering (--wait is
over, or everything settled), before handing what still runs back to the journal."""


async def send(args: argparse.Namespace, runtime: Runtime) -> int:
    incident = None if args.incident is None else await known_incident(runtime.store, args.incident)
    affected: list[str] = []
    if args.template is not None and incident is not None and not args.component:  # the template speaks of these
        affected = [name for name, state in incident.components.items() if state is not ComponentState.OPERATIONAL]
    now = datetime.fromtimestamp(runtime.clock(), UTC)
    for name in args.channel or []:
        one_of(name, runtime.registry.names(), "--channel", "channel")
    draft = draft_from_args(args, now=now, templates=runtime.settings.templates, affected=affected)
    accepted, deliveries = await deliver_draft(
        runtime,
        draft,
        wait=args.wait,
        live=not args.json,
        idempotency_key=args.idempotency_key,
        request_digest=typed_digest(args, draft),
    )
    update = accepted.update
    if args.json:
        print_json(
            {
                "update_id": update.id,
                "incident_id": accepted.incident.id,
                "deliveries": [delivery_json(d) for d in deliveries],
            }
        )
    else:
        deliveries_report(deliveries, update.id)
    return conclude(deliveries, pauses=pauses_holding(await runtime.store.controls(), deliveries))


async def deliver_draft(
    runtime: Runtime,
    draft: UpdateDraft,
    *,
    wait: float | None,
    live: bool,
    idempotency_key: str | None = None,
    request_digest: str | None = None,
) -> tuple[Accepted, list[Delivery]]:
    """Journal `draft` and deliver it in this process for up to `wait` seconds, with per-channel progress on
    stderr (redrawn in place when `live` and stderr is a terminal); returns what was accepted and its
    deliveries as the journal then has them. `send` and `drill` both deliver through this. `wait` None: see
    _wait_for. Ctrl-C stops the wait and hands the rest to the journal (see _CtrlC); what is left is returned
    all the same."""
    channels = sorted({p.channel for p in runtime.plan(draft.channels)}, key=runtime.registry.names().index)
    on_terminal = sys.stderr.isatty() and live
    progress = Progress(sys.stderr, [], live=on_terminal, clock=runtime.clock)
    # Channels are built before anything is journaled, so a channel that cannot start is a
    # configuration error (exit 2) rather than an accepted update that cannot go out. The lanes take this
    # update's deliveries, and on in-order channels the earlier ones to the same targets that must go first,
    # nothing else: other updates' work is for `retry` and the service.
    async with Dispatcher(runtime, channels=channels, observe=progress, updates=set(), drain=CLI_DRAIN) as dispatcher:
        progress.watch_lanes(dispatcher.statuses)
        try:
            accepted = await dispatcher.submit(draft, idempotency_key=idempotency_key, request_digest=request_digest)
        except ConflictError:
            raise ConflictError(
                f"--idempotency-key {idempotency_key!r} was used before for an update with other content; "
                "use a new key for a new update (or the same flags to repeat that one)",
                {"--idempotency-key": "used before for other content"},
            ) from None
        incident, update = accepted.incident, accepted.update
        what = f"update {update.id} of incident {incident.id} ({incident.name})"
        # While the lanes run, stderr is written only if the pipe has room: a reader that stopped reading must
        # not block the event loop, and every delivery with it.
        if accepted.duplicate:
            write_or_drop(sys.stderr, f"Already journaled as {what} (same --idempotency-key); not sent again.\n")
        else:
            write_or_drop(sys.stderr, f"Journaled {what}: {update.status.value}\n")
        progress.follow(accepted.deliveries)  # before any await: the lanes have not started on them yet
        await _deliver_watched(
            dispatcher, progress, accepted.deliveries, wait=wait, now=runtime.clock(), on_terminal=on_terminal
        )
    return accepted, await runtime.store.deliveries(update_id=update.id)


async def retry(args: argparse.Namespace, runtime: Runtime) -> int:
    store = runtime.store
    chosen = args.channel or None
    for name in chosen or []:  # an unknown channel is a typo: refuse it (exit 2) rather than do nothing
        one_of(name, runtime.registry.names(), "--channel", "channel")
    if args.update is not None:
        await known_update(store, args.update)
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
    on_terminal = sys.stderr.isatty() and not args.json
    progress = Progress(sys.stderr, waiting, live=on_terminal, clock=runtime.clock)
    print(f"Delivering {len(waiting)} waiting deliveries on {', '.join(channels) or 'no channel'}.", file=sys.stderr)
    only = None if args.update is None else {args.update}
    async with Dispatcher(runtime, channels=channels, observe=progress, updates=only, drain=CLI_DRAIN) as dispatcher:
        progress.watch_lanes(dispatcher.statuses)
        dispatcher.wake()
        await _deliver_watched(
            dispatcher, progress, waiting, wait=args.wait, now=runtime.clock(), on_terminal=on_terminal
        )
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
        deliveries_report(after, args.update)
    return conclude(after, pauses=pauses_holding(await store.controls(), after))


def _wait_for(wait: float | None, deliveries: Sequence[Delivery], now: float, *, on_terminal: bool) -> float:
    """--wait as given; without it, on a terminal (someone is watching, and can press Ctrl-C), until every
    delivery is done or past its time-to-live; anywhere else (a script, CI) DEFAULT_WAIT."""
    if wait is not None:
        return wait
    if not on_terminal or not deliveries:
        return DEFAULT_WAIT
    return min(MAX_WAIT, max(0.0, max(d.expires_at for d in deliveries) - now))


async def _deliver_watched(
    dispatcher: Dispatcher,
    progress: Progress,
    deliveries: Sequence[Delivery],
    *,
    wait: float | None,
    now: float,
    on_terminal: bool,
) -> None:
    """What send and retry share once something is journaled: progress on stderr while the lanes deliver
    `deliveries`, until `wait` is over (see _wait_for), everything has settled, or Ctrl-C."""
    ctrl_c = _CtrlC(progress)
    async with progress:
        until = _wait_for(wait, deliveries, now, on_terminal=on_terminal)
        await ctrl_c.settle(dispatcher, {d.update_id for d in deliveries}, until)


class _CtrlC:
    """Ctrl-C once something is journaled: say at once that the attempts in flight are being finished (the
    dispatcher gives them CLI_DRAIN seconds, then hands them back to the journal), stop waiting, and let the
    command report what is left and exit 3 with how to resume, rather than die with 130. Any later Ctrl-C
    changes nothing: the hand-over is already bounded, and cutting it short would only lose the report.
    Installed on the event loop for the rest of the command (asyncio.run's own handler would turn a second
    Ctrl-C into KeyboardInterrupt)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._settling: asyncio.Future[list[Delivery]] | None = None
        self._pressed = False
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread: as before
            asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._press)

    def _press(self) -> None:
        if self._pressed:
            return
        self._pressed = True
        self._progress.note(f"Interrupted: finishing the attempts in flight (up to {CLI_DRAIN:g} s)...")
        if self._settling is not None:
            self._settling.cancel()

    async def settle(self, dispatcher: Dispatcher, update_ids: Collection[str], wait: float) -> None:
        """Dispatcher.settle, unless Ctrl-C comes first."""
        if self._pressed:
            return
        self._settling = settling = asyncio.ensure_future(dispatcher.settle(update_ids, wait=wait))
        try:
            await settling
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # this command is being cancelled, not just the wait
                raise


def conclude(deliveries: Sequence[Delivery], *, resumable: bool = True, pauses: Pauses | None = None) -> int:
    """Exit 0 when every target got this update or a newer one of the same incident (superseded is the
    lane doing its job); 3 when anything is still pending or failed or expired. `resumable`: whether
    `retry` and the service can take over what is left (not a drill's, which has a journal of its own).
    `pauses`: those holding back what is left, named with the command that lifts each."""
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
    for note in pauses.notes if pauses else ():
        print(f"{note}.", file=sys.stderr)
    if not resumable:
        return EXIT_NOT_DELIVERED
    if counts[DeliveryState.PENDING] or counts[DeliveryState.IN_FLIGHT]:
        # Held only by pauses, the pending ones go nowhere until someone lifts them: say so.
        after = f" after {pauses.lifted_by}" if pauses and pauses.hold_all else ""
        print(
            f"Pending deliveries stay in the journal: `broadcaster retry` or `broadcaster serve` resumes them{after}.",
            file=sys.stderr,
        )
    if counts[DeliveryState.FAILED]:
        print("Failed deliveries can be tried again with `broadcaster retry --failed`.", file=sys.stderr)
    return EXIT_NOT_DELIVERED
