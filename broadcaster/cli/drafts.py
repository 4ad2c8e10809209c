"""Turning `broadcaster send` flags into a validated UpdateDraft, with errors that name the flag."""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from broadcaster.cli.output import when
from broadcaster.domain.drafts import validate_draft
from broadcaster.domain.errors import InputError
from broadcaster.domain.models import MAX_DAYS_AHEAD, TOO_FAR_AHEAD, UpdateDraft
from broadcaster.domain.templates import fill_template
from broadcaster.domain.transitions import REOPEN_HOW
from broadcaster.domain.vocabulary import ComponentState, Impact, Status
from config.loading import did_you_mean

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
    "reopen": "--reopen",
    "idempotency_key": "--idempotency-key",
}
"""The flag behind each field of an update: the one mapping from the domain's (and the API's) words to the
command line's."""
_FIELD_NAME = re.compile(r"(?<![\w'-])(\w+)(?![\w'])")


def draft_from_args(
    args: argparse.Namespace, *, now: datetime, templates: Mapping[str, str], affected: Collection[str] = ()
) -> UpdateDraft:
    """The draft the flags describe. With --template, the message is that template filled in from the
    components named (else `affected`, the incident's components not operational) and --next-update."""
    one_of(args.status, [s.value for s in Status], "--status", "status")
    one_of(args.impact, [i.value for i in Impact], "--impact", "impact")
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
    # The domain refuses a next update in the past too (whichever way it comes), in its own words: here it is
    # refused in the words typed, with the time now beside them.
    if isinstance(next_update_at, datetime) and next_update_at <= now:
        raise InputError(
            f"--next-update {args.next_update!r} is in the past (it is {when(now)} now)",
            {"--next-update": "must be in the future"},
        )
    return validate_draft({key: value for key, value in fields.items() if value is not None}, _FLAGS)


def typed_digest(args: argparse.Namespace, draft: UpdateDraft) -> str:
    """What the flags said, to refuse an --idempotency-key used again with other content. As typed, so that a
    relative --next-update 30m is the same request on a rerun an hour later; the message as read (a "-"
    reads standard input); a template by its name; repeated flags in any order (--component and --channel
    name a set)."""
    typed = {
        "title": args.title,
        "incident": args.incident,
        "status": args.status,
        "message": draft.message if args.template is None else None,
        "template": args.template,
        "impact": args.impact,
        "component": sorted(args.component),
        "channel": None if args.channel is None else sorted(args.channel),
        "next_update": args.next_update,
        "scheduled_for": args.scheduled_for,
        "scheduled_until": args.scheduled_until,
        "reopen": args.reopen,
    }
    return hashlib.sha256(json.dumps(typed, sort_keys=True).encode()).hexdigest()


def _from_template(
    name: str, templates: Mapping[str, str], components: Collection[str], next_update_at: datetime | str | None
) -> str:
    one_of(name, sorted(templates), "--template", "template")
    # A --next-update that is not a time yet (ISO text) is filled in as pydantic will read it.
    due = datetime.fromisoformat(next_update_at) if isinstance(next_update_at, str) else next_update_at
    return fill_template(templates[name], components=components, next_update_at=due)


def _component(item: str) -> tuple[str, str]:
    name, sep, state = item.rpartition("=")
    if not sep or not name.strip():
        raise InputError(f"--component {item!r}: expected NAME=STATE", {"--component": "expected NAME=STATE"})
    one_of(state.strip(), [c.value for c in ComponentState], f"--component {name.strip()}", "state")
    return name.strip(), state.strip()


def one_of(value: str | None, choices: Sequence[str], label: str, noun: str) -> None:
    """Refuse (exit 2) a `value` that is none of `choices` (None: not given), suggesting the nearest."""
    if value is None or value in choices:
        return
    raise InputError(
        f"{label + ': ' if label else ''}unknown {noun} {value!r}{did_you_mean(value, choices)}; "
        f"one of {', '.join(choices) or 'none'}",
        {label or noun: "unknown"},
    )


def in_flag_words(error: InputError) -> InputError:
    """`error` as the command line says it: each field it names in the domain's (and the JSON API's) words, as
    the flag behind it ("scheduled_until must be after scheduled_for" -> "--scheduled-until must be after
    --scheduled-for"; where an incident can be reopened -> "(--reopen)"). Quoted text (what the user typed)
    is left as it is."""
    text = str(error).replace(REOPEN_HOW, f"({_FLAGS['reopen']})")
    text = _FIELD_NAME.sub(lambda m: _FLAGS[m[1]] if "_" in m[1] and m[1] in _FLAGS else m[0], text)
    fields = {_FLAGS.get(name, name): problem for name, problem in error.fields.items()}
    return type(error)(text, fields)


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
