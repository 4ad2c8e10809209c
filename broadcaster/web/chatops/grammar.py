"""The text of a chat slash command (Slack, Mattermost), parsed into what the commander asked for.

The forms (USAGE shows them to people, with examples): `new <impact> <title> | [clauses] <message>` opens an
incident, status investigating; `update <incident> <status> [clauses] <message>`; `resolve <incident>
[clauses] <message>`; `status` lists the open incidents; `help`, or no text at all, asks for USAGE.

Command, impact, status, state and clause words are case-insensitive; titles, messages and component names
are kept as typed. <impact> is none, minor, major or critical; <status> any Status (in-progress and
"in progress" also spell in_progress); <incident> an incident id, in either case (phones capitalise). The
title runs to the first "|"; one pair of quotes around it, straight or typographic as phones type them, is
stripped, and a quoted title may hold "|" itself. The clauses, in any order, come before the message:

    component <name>=<state>   any number; quote a name holding spaces or "="; major-outage = major_outage
    next <duration>            30m, 1h, 90m, 1h30m: from 1 minute to 24 hours; at most once, never when
                               the update resolves (resolve, or status resolved or completed)

A clause counts only where it is plainly meant as one, so that a message may begin with either word:
"next" must be followed by a word starting with a digit, "component" by a quoted name, a word holding "=",
or a name and then a component state. Anything else begins the message ("next steps are being planned"),
which runs to the end of the text, line breaks and all, and is not searched for clauses. A clause that is
plainly meant but malformed (next 90s, component "API" down) is an error, never quietly message text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, TypeAlias, TypeVar

from broadcaster.domain.models import ID_PATTERN, MAX_COMPONENT_NAME, MAX_COMPONENTS, MAX_MESSAGE, MAX_TITLE
from broadcaster.domain.text import one_line
from broadcaster.domain.vocabulary import ComponentState, Impact, Status


class ChatCommandError(ValueError):
    """The command text cannot be understood; the message says what is wrong, in one line."""


@dataclass(frozen=True, slots=True)
class NewIncident:
    impact: Impact
    title: str
    message: str
    components: dict[str, ComponentState] = field(default_factory=dict)
    next_update_in: timedelta | None = None


@dataclass(frozen=True, slots=True)
class UpdateIncident:
    incident_id: str
    status: Status
    message: str
    components: dict[str, ComponentState] = field(default_factory=dict)
    next_update_in: timedelta | None = None


@dataclass(frozen=True, slots=True)
class ResolveIncident:
    incident_id: str
    message: str
    components: dict[str, ComponentState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShowStatus:
    """List the open incidents."""


@dataclass(frozen=True, slots=True)
class ShowHelp:
    """Show USAGE."""


Submission: TypeAlias = NewIncident | UpdateIncident | ResolveIncident
"""The commands that post an update, and so become an UpdateDraft through draft_fields."""
ChatCommand: TypeAlias = Submission | ShowStatus | ShowHelp

_IMPACTS: Final = (Impact.NONE, Impact.MINOR, Impact.MAJOR, Impact.CRITICAL)  # maintenance is not an incident's
_QUOTES: Final = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
# Digits capped: a longer number is over 24h anyway, and int() raises on a string of over 4300 of them.
_DURATION: Final = re.compile(r"(?:([0-9]{1,5})h)?(?:([0-9]{1,5})m)?", re.IGNORECASE)
_LINE_BREAK: Final = re.compile(r"[\r\n\t\u2028\u2029]")
_ECHO: Final = 40
_E = TypeVar("_E", bound=StrEnum)


def _listed(values: Sequence[StrEnum], last: str = ", ") -> str:
    words = [value.value for value in values]
    return ", ".join(words[:-1]) + last + words[-1]


USAGE: Final[str] = f"""\
Commands:
  new <impact> <title> | [clauses] <message>       open an incident (status investigating)
  update <incident> <status> [clauses] <message>   post an update
  resolve <incident> [clauses] <message>           resolve an incident
  status                                           list the open incidents
  help                                             show this text
Clauses, before the message, in any order:
  component <name>=<state>   any number; quote a name with spaces: component "Checkout API"=major_outage
  next <duration>            when the next update is due: 30m, 1h, 1h30m (1m to 24h); not on resolve
impact: {_listed(_IMPACTS)}
status: {_listed(tuple(Status))}
state: {_listed(tuple(ComponentState))}
Examples:
  new major API errors | component API=partial_outage next 30m Some card payments fail.
  update 7k2m9q4x1c8d identified next 1h A faulty deploy; we are rolling it back.
  resolve 7k2m9q4x1c8d component API=operational All payments go through again.
  status
  help"""


_STATE_WORDS: Final = frozenset({"up", "down", "ok", "fine", "broken", "degraded", "outage", "slow", "maintenance"})
"""Words a commander may write for a component's state after its name: "component API down ..." is a clause
gone wrong, not the start of the message."""


def parse_command(text: str) -> ChatCommand:
    """The command in `text`, the slash command's argument; ChatCommandError says what is wrong with it."""
    word, rest = _word(text)
    match word.lower():
        case "" | "help":  # whatever was asked about, the usage is the answer
            return ShowHelp()
        case "status":
            if rest:  # probably meant for update: listing everything instead would hide the mistake
                raise ChatCommandError(f'"status" takes nothing after it (got {_show(rest)}): it lists every open one')
            return ShowStatus()
        case "new":
            return _new(rest)
        case "update":
            return _update(rest)
        case "resolve":
            incident_id, rest = _incident("resolve", rest)
            no_next = '"resolve" takes no next clause: a resolved incident promises no next update'
            components, _, message = _clauses(rest, no_next)
            return ResolveIncident(incident_id, _message(message, '"resolve" needs a message'), components)
    raise ChatCommandError(f"unknown command {_show(word)}: use new, update, resolve, status or help")


def draft_fields(command: Submission, *, now: datetime, author: str) -> dict[str, Any]:
    """The fields of the UpdateDraft that `command` submits, for validate_draft; `now` must be aware."""
    if now.utcoffset() is None:
        raise ValueError("now must carry a time zone")
    fields: dict[str, Any] = {
        "message": command.message,
        "components": {name: state.value for name, state in command.components.items()},
        "author": author,
    }
    if isinstance(command, NewIncident):
        fields |= {"title": command.title, "status": Status.INVESTIGATING.value, "impact": command.impact.value}
    else:
        status = command.status if isinstance(command, UpdateIncident) else Status.RESOLVED
        fields |= {"incident_id": command.incident_id, "status": status.value}
    if not isinstance(command, ResolveIncident) and command.next_update_in is not None:
        fields["next_update_at"] = now + command.next_update_in
    return fields


def _new(text: str) -> NewIncident:
    word, text = _word(text)
    impact = _pick(word, _IMPACTS, "impact", '"new" needs an impact')
    close = _QUOTES.get(text[:1])
    quoted = re.match(rf"{re.escape(text[0])}(.*?){re.escape(close)}\s*\|", text, re.DOTALL) if close else None
    if quoted:
        title, text = quoted[1].strip(), text[quoted.end() :]
    elif close and "|" in text[1 : max(0, text.find(close, 1))]:
        # '"API | DB" errors | ...': the quotes hold a "|" but do not end the title; which "|" was meant?
        raise ChatCommandError(f'a quoted title holding "|" must end with its closing {close}, right before "|"')
    else:
        title, bar, text = text.partition("|")
        if not bar:
            raise ChatCommandError('"new" needs "|" between the title and the message')
        title = title.strip()
        if len(title) >= 2 and _QUOTES.get(title[0]) == title[-1]:
            title = title[1:-1].strip()
    if not title:
        raise ChatCommandError('"new" needs a title before "|"')
    if _LINE_BREAK.search(title):
        raise ChatCommandError('the title must be one line, without tabs: end it with "|" and write the message after')
    _check_length("the title", title, MAX_TITLE)
    components, next_in, message = _clauses(text)
    return NewIncident(impact, title, _message(message, '"new" needs a message after "|"'), components, next_in)


def _update(text: str) -> UpdateIncident:
    incident_id, text = _incident("update", text)
    word, text = _word(text)
    following, after = _word(text)
    if word.lower() == "in" and following.lower() == "progress":
        word, text = "in_progress", after
    status = _pick(word, tuple(Status), "status", '"update" needs a status after the incident id')
    no_next = f"next does not go with status {status.value}: a finished incident promises no next update"
    components, next_in, message = _clauses(text, no_next if status.is_final else None)
    return UpdateIncident(incident_id, status, _message(message, '"update" needs a message'), components, next_in)


def _incident(command: str, text: str) -> tuple[str, str]:
    word, text = _word(text)
    if not word:
        raise ChatCommandError(f'"{command}" needs an incident id')
    if not ID_PATTERN.match(word.lower()):
        raise ChatCommandError(f"not an incident id: {_show(word)}")
    return word.lower(), text


def _clauses(text: str, no_next: str | None = None) -> tuple[dict[str, ComponentState], timedelta | None, str]:
    """The component and next clauses that begin `text`, and the text after them; `no_next` refuses next."""
    components: dict[str, ComponentState] = {}
    next_in: timedelta | None = None
    while True:
        keyword, after = _word(text)
        if keyword.lower() == "component" and (clause := _component(after)):
            name, state, text = clause
            if name in components:
                raise ChatCommandError(f"component {_show(name)} is given twice")
            if len(components) == MAX_COMPONENTS:
                raise ChatCommandError(f"too many components: at most {MAX_COMPONENTS} in one command")
            components[name] = state
        elif keyword.lower() == "next" and after[:1].isdecimal():
            if no_next:
                raise ChatCommandError(no_next)
            if next_in is not None:
                raise ChatCommandError("next is given twice: one update promises one next update")
            word, text = _word(after)
            match = _DURATION.fullmatch(word)
            minutes = int(match[1] or 0) * 60 + int(match[2] or 0) if match else 0
            if not 1 <= minutes <= 24 * 60:
                raise ChatCommandError(f"next wants a duration like 30m or 1h, from 1m to 24h (got {_show(word)})")
            next_in = timedelta(minutes=minutes)
        else:
            return components, next_in, text


def _component(text: str) -> tuple[str, ComponentState, str] | None:
    """The name, state and following text of the component clause `text` continues, or None when the word
    "component" before it starts the message instead."""
    close = _QUOTES.get(text[:1])
    if close:
        end = text.find(close, 1)
        if end < 0:
            raise ChatCommandError(f"component name {_show(text)} lacks its closing {close}")
        name, rest = text[1:end].strip(), text[end + 1 :].lstrip()
    else:
        name = re.split(r"[\s=]", text, maxsplit=1)[0]
        rest = text[len(name) :].lstrip()
    if not rest.startswith("="):
        following = _word(rest)[0]
        spaced = "=" in following and _lookup(following.partition("=")[2], tuple(ComponentState))
        if spaced:  # component Checkout API=major_outage: a name with a space in it, unquoted
            rest_of_name, _, state = following.partition("=")
            raise ChatCommandError(f'quote a component name with spaces: component "{name} {rest_of_name}"={state}')
        if close or (name and (_lookup(following, tuple(ComponentState)) or following.lower() in _STATE_WORDS)):
            raise ChatCommandError(
                f"component wants <name>=<state> (got {_show(text)}): states are {_listed(tuple(ComponentState))}"
            )
        return None
    if not name:
        raise ChatCommandError('component needs a name before "="')
    _check_length("the component name", name, MAX_COMPONENT_NAME)
    word, rest = _word(rest[1:])
    state = _pick(word, tuple(ComponentState), "component state", f'component {_show(name)} needs a state after "="')
    return name, state, rest


def _word(text: str) -> tuple[str, str]:
    """The first word of `text` and the rest, which keeps its line breaks and spacing."""
    first, rest, *_ = [*text.split(maxsplit=1), "", ""]
    return first, rest


def _lookup(word: str, allowed: Sequence[_E]) -> _E | None:
    key = word.lower().replace("-", "_")
    return next((value for value in allowed if value.value == key), None)


def _pick(word: str, allowed: Sequence[_E], what: str, missing: str) -> _E:
    if (value := _lookup(word, allowed)) is not None:
        return value
    problem = f"unknown {what} {_show(word)}" if word else missing
    raise ChatCommandError(f"{problem}: use {_listed(allowed, ' or ')}")


def _message(text: str, missing: str) -> str:
    if not (message := text.strip()):
        raise ChatCommandError(missing)
    _check_length("the message", message, MAX_MESSAGE)
    return message


def _check_length(what: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise ChatCommandError(f"{what} is {len(text)} characters long: at most {limit}")


def _show(text: str) -> str:
    """`text` quoted for a one-line error: cut short, and no control character or line break left raw."""
    cut = text if len(text) <= _ECHO else text[: _ECHO - 1] + "…"
    return "'" + one_line(cut) + "'"
