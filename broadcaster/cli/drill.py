"""`broadcaster drill`: a clearly marked test update, sent to the drill targets only ([drill]) and timed per
channel, so an operator rehearses the path an incident update takes before an incident needs it.

Isolation is by construction. The drill runs on settings derived from the real ones (`drill_settings`) in
which every channel has its drill targets and nothing else, and on a journal of its own,
<data_dir>/drills.db: always SQLite, even when [store] url is Redis, since a drill must work in a blackout
too. The real journal is only read, read-only, for its subscribers (drill_guard), so a drill never appears
on the status site, its feeds or its history. Before anything is sent, a drill target that equals a real one
is refused (exit 2; config.drill says what "equal" means), and every title starts with "[DRILL] " so each
channel's text says what it is. No drill link points at the real service (drill_settings)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Collection, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from broadcaster.cli.deliver import conclude, deliver_draft
from broadcaster.cli.drafts import one_of
from broadcaster.cli.drill_guard import Withheld, check_targets
from broadcaster.cli.output import deliveries_table, delivery_json, print_json, table
from broadcaster.domain.drafts import validate_draft
from broadcaster.domain.errors import InputError
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.records import record
from broadcaster.domain.vocabulary import DeliveryState, Status
from broadcaster.runtime import open_runtime
from broadcaster.store import Delivery
from config import CHANNEL_NAMES, ConfigError, Settings
from config.email import EmailSettings
from config.mirror import MirrorSettings
from config.webhook import WebhookSettings
from config.x import XSettings

DRILL_PREFIX: Final = "[DRILL] "
DEFAULT_TITLE: Final = "Broadcaster drill"
JOURNAL_NAME: Final = "drills.db"
DRILL_DIR: Final = "drills"
"""Under <data_dir>: the drill's recipients file and its own suppression list."""
_FLAGS: Final = {"title": "--title", "status": "--status", "message": "--message", "channels": "--channel"}
_WHERE: Final = {
    "email": "[drill] email_recipients",
    "x": "[drill.x]",
    "webhook": "[[drill.webhook_targets]]",
    "mirror": "[drill] mirror_directory",
}
"""Where each channel's drill targets are configured."""
_NOT_DELIVERED_YET: Final = (DeliveryState.PENDING, DeliveryState.IN_FLIGHT)
_NOT_DELIVERED: Final = (DeliveryState.FAILED, DeliveryState.EXPIRED)


@record
class ChannelTimes:
    """One channel's part in a drill: how many targets got it, and when (seconds after acceptance)."""

    channel: str
    targets: int
    delivered: int
    failed: int
    pending: int
    first_delivered_s: float | None
    last_delivered_s: float | None


async def drill(args: argparse.Namespace, settings: Settings) -> int:
    """Refuse a drill target equal to a real one, journal the drill in its own journal, deliver it and report
    each channel's time to deliver, and each channel left out and why. Exits as `send` does."""
    withheld = await check_targets(settings, named=args.channel or [])
    for left_out in withheld:
        print(f"broadcaster: drill: {left_out.channel} left out: {left_out.reason}", file=sys.stderr)
    derived = drill_settings(settings, leave_out=[left_out.channel for left_out in withheld])
    available = drill_channels(derived)
    draft = drill_draft(args, available=available, now=datetime.now(UTC), withheld=withheld)
    skipped = [] if args.channel else skipped_channels(available, withheld)
    write_recipients(settings.drill.email_recipients, _recipients_file(settings))
    runtime = await open_runtime(derived, drill=True)
    try:
        accepted, deliveries = await deliver_draft(runtime, draft, wait=args.wait, live=not args.json)
    finally:
        await runtime.close()
    update = accepted.update
    times = channel_times(deliveries, accepted_at=update.created_at.timestamp(), order=CHANNEL_NAMES)
    if args.json:
        print_json(
            {
                "drill": True,
                "update_id": update.id,
                "incident_id": accepted.incident.id,
                "channels": [asdict(t) for t in times],
                "skipped": [asdict(s) for s in skipped],
                "deliveries": [delivery_json(d) for d in deliveries],
            }
        )
    else:
        deliveries_table(deliveries)
        print()
        times_table(times, skipped)
    print(f"Drill journaled in {runtime.store.url}, apart from the real journal.", file=sys.stderr)
    return conclude(deliveries, resumable=False)


def skipped_channels(available: Sequence[str], withheld: Sequence[Withheld]) -> list[Withheld]:
    """Every channel the drill leaves out, in the registry's order: those withheld, and those with no drill
    target (X without [drill.x], say), so the report shows what the drill did not prove."""
    why = {left_out.channel: left_out.reason for left_out in withheld}
    return [
        Withheld(name, why.get(name, f"{_WHERE[name]} is not set")) for name in CHANNEL_NAMES if name not in available
    ]


# --- what the drill may reach


def drill_settings(settings: Settings, *, leave_out: Collection[str] = ()) -> Settings:
    """The real settings with every channel narrowed to its drill targets (none for the channels in
    `leave_out`) and the journal moved to <data_dir>/drills.db. Sections are built afresh from the drill's
    keys where they can be, so a real target added to a section later is left behind rather than carried
    into drills; email keeps its relay (the drill proves it works) and takes its recipients from a file the
    drill writes. No link points at the real service: [service] public_url and the unsubscribe keys are
    cleared, so a drill email carries no unsubscribe or manage link signed with the real key (and no key is
    made in the real data directory)."""
    drill = settings.drill
    data_dir = settings.service.data_dir
    real_mirror = settings.mirror
    _ = settings.scrubber  # built first, so the copy keeps it: it knows the real secrets too, to keep them out
    mirror = MirrorSettings(
        enabled=drill.mirror_directory is not None,
        directories=[drill.mirror_directory] if drill.mirror_directory is not None else [],
        page_title=real_mirror.page_title,
        components=real_mirror.components,
        history_days=real_mirror.history_days,
        # No public_url: links to the real site would lead nowhere, as drills are not there.
    )
    webhook = WebhookSettings(
        enabled=bool(drill.webhook_targets) and "webhook" not in leave_out, targets=drill.webhook_targets
    )
    email = _drill_email(settings)
    return settings.model_copy(
        update={
            "store": settings.store.model_copy(update={"url": f"sqlite:///{data_dir / JOURNAL_NAME}"}),
            "service": settings.service.model_copy(update={"public_url": ""}),
            "email": email.model_copy(update={"enabled": email.enabled and "email" not in leave_out}),
            "webhook": webhook,
            "mirror": mirror,
            "x": drill.x_account or XSettings(),
        }
    )


def _drill_email(settings: Settings) -> EmailSettings:
    recipients = settings.drill.email_recipients
    if recipients and not settings.email.from_addr:
        raise ConfigError(
            "[drill] email_recipients are mailed through the [email] relay, but [email] has no from_addr: "
            "configure [email] (host, port, from_addr) as for real updates"
        )
    return settings.email.model_copy(
        update={
            "enabled": bool(recipients),
            "subscribers_file": _recipients_file(settings),
            # A drill address that bounces is remembered for drills, never on the real list.
            "suppression_file": settings.service.data_dir / DRILL_DIR / "email-suppressed.txt",
            "unsubscribe_url": "",
            "unsubscribe_secret": None,
        }
    )


def _recipients_file(settings: Settings) -> Path:
    return settings.service.data_dir / DRILL_DIR / "recipients.txt"


def write_recipients(addresses: Sequence[str], path: Path) -> None:
    """The drill's recipients as the email channel reads them (one address a line), replaced atomically."""
    if not addresses:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staged.write_text("".join(f"{address}\n" for address in addresses), encoding="utf-8")
    os.replace(staged, path)


def drill_channels(derived: Settings) -> list[str]:
    """The channels the drill has targets for, in the registry's order."""
    return [name for name in CHANNEL_NAMES if getattr(derived, name).enabled]


def drill_draft(
    args: argparse.Namespace, *, available: Sequence[str], now: datetime, withheld: Sequence[Withheld] = ()
) -> UpdateDraft:
    """The drill's update: a new incident whose title starts with "[DRILL] ", on the chosen channels."""
    if not available and withheld:
        raise ConfigError(f"{withheld[0].reason}; the drill has no other target, so it was not run")
    if not available:
        raise ConfigError(
            "[drill] has no targets: set email_recipients, [[drill.webhook_targets]], mirror_directory or [drill.x]"
        )
    one_of(args.status, [status.value for status in Status], "--status", "status")
    for name in args.channel or []:
        one_of(name, CHANNEL_NAMES, "--channel", "channel")
        if name not in available:
            raise InputError(f"--channel {name}: the drill has no {name} target ({_WHERE[name]} is not set)")
    title = args.title if args.title.startswith(DRILL_PREFIX) or not args.title.strip() else DRILL_PREFIX + args.title
    # The time makes each drill's text its own: X refuses a post repeating an earlier one.
    default = (
        f"This is a test of our incident channels (broadcaster drill, {now:%Y-%m-%d %H:%M:%S} UTC). "
        "There is no incident and nothing to do."
    )
    fields: dict[str, Any] = {
        "title": title,
        "status": args.status,
        "message": default if args.message is None else args.message,
        "channels": args.channel or None,
        "author": "broadcaster drill",
    }
    return validate_draft(fields, _FLAGS)


# --- the report


def channel_times(deliveries: Sequence[Delivery], *, accepted_at: float, order: Sequence[str]) -> list[ChannelTimes]:
    """Per channel (in `order`): targets, outcomes, and seconds from acceptance to its first and its last
    delivered target (None when none was delivered)."""
    found: list[ChannelTimes] = []
    for channel in order:
        mine = [d for d in deliveries if d.channel == channel]
        if not mine:
            continue
        done = sorted(
            d.finished_at - accepted_at
            for d in mine
            if d.state is DeliveryState.DELIVERED and d.finished_at is not None
        )
        found.append(
            ChannelTimes(
                channel=channel,
                targets=len(mine),
                delivered=sum(d.state is DeliveryState.DELIVERED for d in mine),
                failed=sum(d.state in _NOT_DELIVERED for d in mine),
                pending=sum(d.state in _NOT_DELIVERED_YET for d in mine),
                first_delivered_s=round(done[0], 3) if done else None,
                last_delivered_s=round(done[-1], 3) if done else None,
            )
        )
    return found


def times_table(times: Sequence[ChannelTimes], skipped: Sequence[Withheld] = ()) -> None:
    rows = [
        (
            t.channel,
            *map(str, (t.targets, t.delivered, t.failed, t.pending)),
            *map(_seconds, (t.first_delivered_s, t.last_delivered_s)),
        )
        for t in times
    ]
    rows += [(s.channel, "skipped", "-", "-", "-", "-", "-") for s in skipped]
    table(rows, ("channel", "targets", "delivered", "failed", "pending", "first", "last"))
    for s in skipped:
        print(f"{s.channel} skipped: {s.reason}")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"
