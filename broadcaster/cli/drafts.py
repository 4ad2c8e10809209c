"""Turning `broadcaster send` flags into a validated UpdateDraft, with errors that name the flag."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from broadcaster.domain.drafts import validate_draft
from broadcaster.domain.errors import InputError
from broadcaster.domain.models import MAX_DAYS_AHEAD, TOO_FAR_AHEAD, UpdateDraft
from broadcaster.domain.templates import fill_template

_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_MOST_AHEAD: Final = {
    "seconds": MAX_DAYS_AHEAD * 86400,
    "minutes": MAX_DAYS_AHEAD * 1440,
    "hours": MAX_DAYS_AHEAD * 24,
    "days": MAX_DAYS_AHEAD,
}
_FLAGS: Final = {
    "title": "--title",
    "incident_id": "--incident",
    "status": "--status",
    "message": "--message",
    "impact": "--impact",
    "components": "--component",
    "channels": "--channel",
    "next_update_at": "--next-update",
    "scheduled_for": "--scheduled-for",
    "scheduled_until": "--scheduled-until",
}


def draft_from_args(
    args: argparse.Namespace, *, now: datetime, templates: Mapping[str, str], affected: Collection[str] = ()
) -> UpdateDraft:
    """The draft the flags describe. With --template, the message is that template filled in from the
    components named (else `affected`, the incident's components not operational) and --next-update."""
    components = dict(_component(item) for item in args.component)
    next_update_at = _when(args.next_update, now, "--next-update")
    if args.template is not None:
        message = _from_template(args.template, templates, components or affected, next_update_at)
    else:
        message = sys.stdin.read() if args.message == "-" else args.message
    fields: dict[str, Any] = {
        "title": args.title,
        "incident_id": args.incident,
        "status": args.status,
        "message": message,
        "impact": args.impact,
        "components": components,
        "channels": args.channel,
        "next_update_at": next_update_at,
        "scheduled_for": _when(args.scheduled_for, now, "--scheduled-for"),
        "scheduled_until": _when(args.scheduled_until, now, "--scheduled-until"),
        "reopen": args.reopen,
        "author": _os_user(),
    }
    return validate_draft({key: value for key, value in fields.items() if value is not None}, _FLAGS)


def _from_template(
    name: str, templates: Mapping[str, str], components: Collection[str], next_update_at: datetime | str | None
) -> str:
    if name not in templates:
        known = ", ".join(sorted(templates)) or "none"
        raise InputError(f"--template {name!r}: no such template (known: {known})", {"--template": "unknown"})
    # A --next-update that is not a time yet (ISO text) is filled in as pydantic will read it.
    due = datetime.fromisoformat(next_update_at) if isinstance(next_update_at, str) else next_update_at
    return fill_template(templates[name], components=components, next_update_at=due)


def _component(item: str) -> tuple[str, str]:
    name, sep, state = item.rpartition("=")
    if not sep or not name.strip():
        raise InputError(f"--component {item!r}: expected NAME=STATE", {"--component": "expected NAME=STATE"})
    return name.strip(), state.strip()


def _when(text: str | None, now: datetime, flag: str) -> datetime | str | None:
    """ "30m", "2h", "1d" from now, or ISO 8601 with a time zone (pydantic then refuses a naive one)."""
    if text is None:
        return None
    if match := _RELATIVE.match(text.strip()):
        amount, unit = int(match.group(1)), _UNITS[match.group(2)]
        # Measured before a timedelta is built: 99999999999d does not even fit one.
        if amount > _MOST_AHEAD[unit]:
            raise InputError(f"{flag} {text!r}: {TOO_FAR_AHEAD}", {flag: TOO_FAR_AHEAD})
        return now + timedelta(**{unit: amount})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        example = "2026-11-23T10:30:00Z"
        raise InputError(
            f"{flag} {text!r}: expected 30m, 2h, 1d or an ISO 8601 time such as {example}", {flag: "not a time"}
        ) from None
    if parsed.tzinfo is None:
        raise InputError(f"{flag} {text!r}: add a time zone, e.g. {text}Z for UTC", {flag: "no time zone"})
    # Compared before converting: close to the year 9999 (or 1) a time has no UTC equivalent.
    if parsed - now > timedelta(days=MAX_DAYS_AHEAD):
        raise InputError(f"{flag} {text!r}: {TOO_FAR_AHEAD}", {flag: TOO_FAR_AHEAD})
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InputError(f"{flag} {text!r}: out of range", {flag: "out of range"}) from None


def _os_user() -> str:
    """Who ran the CLI, recorded as the update's author: the operating system's user name."""
    try:
        return getpass.getuser()[:100]
    except (OSError, KeyError):  # no user name in the environment and none in the password database
        return "cli"
