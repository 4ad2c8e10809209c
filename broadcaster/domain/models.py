"""What an incident commander submits (UpdateDraft, validated) and what the journal keeps (records)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from broadcaster.domain.vocabulary import ComponentState, Impact, Kind, Status

MAX_TITLE: Final = 200
MAX_MESSAGE: Final = 5000
MAX_COMPONENT_NAME: Final = 100
MAX_COMPONENTS: Final = 50
ID_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32: no i, l, o, u to misread
ID_LENGTH: Final = 12
ID_PATTERN: Final = re.compile(rf"^[{ID_ALPHABET}]{{{ID_LENGTH}}}$")

MAX_DAYS_AHEAD: Final = 3653
"""How far ahead (ten years) a next-update or maintenance time may lie: further is a typo, and close to the
year 9999 a time can no longer be converted to UTC at all."""
TOO_FAR_AHEAD: Final = f"too far in the future (at most {MAX_DAYS_AHEAD} days, about ten years, ahead)"

# Refused in every text field: C0 and C1 controls and DEL, the bidirectional overrides that can make a
# status message display differently from what was typed, and what XML 1.0 cannot carry at all (lone
# surrogates, U+FFFE, U+FFFF): one of those in a title makes history.atom unreadable for every strict feed
# reader. Newlines and tabs are allowed in messages only.
_REFUSED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_LINE_BREAK_OR_TAB = re.compile(r"[\n\t]")


_BYTE_TO_LETTER: Final = bytes.maketrans(bytes(range(256)), bytes(ord(ID_ALPHABET[b % 32]) for b in range(256)))


def new_id() -> str:
    """A random 12-character id in the style of Statuspage ids, safe in URLs and file names (60 random
    bits: 256 is a multiple of the alphabet's 32, so each byte picks a letter without bias)."""
    return secrets.token_bytes(ID_LENGTH).translate(_BYTE_TO_LETTER).decode("ascii")


_PAIRS: Final = tuple(ID_ALPHABET[i >> 5] + ID_ALPHABET[i & 31] for i in range(1024))
"""Every two-letter string of the alphabet, by the 10-bit number it writes."""
RUN_PREFIX: Final = 8
RUN_SPAN: Final = 1 << 20
"""Ids one prefix numbers at most: the 4 letters after it write 20 bits."""


def delivery_ids(count: int) -> list[str]:
    """`count` distinct ids like new_id() for the deliveries of one update, side by side in the journal's
    id index: they share a random 8-letter prefix and count on from a random start in their last 4
    letters (a new prefix every RUN_SPAN ids, never one already drawn in the same call).

    Independent random ids would scatter each update's deliveries over the whole index, so that accepting
    a large fan-out into a long history touches and rewrites about as many index pages as it has
    deliveries (tests/bench/bench_journal --history measures it). Two updates' ids can
    only clash if they draw the same 40-bit prefix and overlapping counters, a chance of about 2e-15 for
    two 1,000-target updates: less than two sets of 1,000 independent 60-bit ids (about 9e-13). One
    update's ids can be told from one another (a receiver's webhook-id says where it sits in the
    fan-out); nothing treats them as secret, and a signature needs its target's key."""
    ids: list[str] = []
    prefixes: set[str] = set()
    while len(ids) < count:
        prefix = new_id()[:RUN_PREFIX]
        if prefix in prefixes:
            continue
        prefixes.add(prefix)
        start = secrets.randbelow(RUN_SPAN)
        run = range(start, start + min(count - len(ids), RUN_SPAN))
        ids += [prefix + _PAIRS[(n := number % RUN_SPAN) >> 10] + _PAIRS[n & 1023] for number in run]
    return ids


def _no_controls(text: str, *, allow_newlines: bool) -> str:
    if not allow_newlines and _LINE_BREAK_OR_TAB.search(text):
        raise ValueError("must be a single line (no line breaks or tabs)")
    _refuse(_REFUSED.search(text))
    return text


def _no_surrogates(value: object) -> object:
    """pydantic refuses a string holding a lone surrogate (what an undecodable byte on a command line
    becomes) before any AfterValidator runs, naming neither the character nor where it is: this runs
    before pydantic's check, and does."""
    if isinstance(value, str):
        _refuse(_SURROGATE.search(value))
    return value


def _refuse(match: re.Match[str] | None) -> None:
    if match is None:
        return
    code = ord(match.group())
    control = code < 0xD800  # every refused character below the surrogates is a control character
    what = "a control character" if control else "a lone surrogate" if code <= 0xDFFF else "a noncharacter"
    why = "" if control else ", which XML (the Atom feed) cannot carry"
    raise ValueError(f"contains {what} (U+{code:04X}) at position {match.start()}{why}")


def _single_line(text: str) -> str:
    return _no_controls(text, allow_newlines=False)


def _multi_line(text: str) -> str:
    return _no_controls(text.replace("\r\n", "\n").replace("\r", "\n"), allow_newlines=True)


def _incident_id(value: str) -> str:
    if not ID_PATTERN.match(value):
        raise ValueError(f"{value!r} is not an incident id (12 characters from {ID_ALPHABET})")
    return value


# BeforeValidator after Field: the length limits stay on the string itself and keep their own messages.
Title = Annotated[
    str, Field(min_length=1, max_length=MAX_TITLE), BeforeValidator(_no_surrogates), AfterValidator(_single_line)
]
Message = Annotated[
    str, Field(min_length=1, max_length=MAX_MESSAGE), BeforeValidator(_no_surrogates), AfterValidator(_multi_line)
]
ComponentName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_COMPONENT_NAME),
    BeforeValidator(_no_surrogates),
    AfterValidator(_single_line),
]
IncidentId = Annotated[str, AfterValidator(_incident_id)]


class UpdateDraft(BaseModel):
    """One incident update as submitted through the CLI, the API, chatops or the form.

    Exactly one of `title` (opens a new incident) or `incident_id` (adds to an existing one).
    `impact` defaults to the worst affected component's (or "minor" for a new incident with none);
    maintenance always has impact "maintenance". `channels` limits the fan-out (default: every enabled
    channel). Times must carry a time zone."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    title: Title | None = None
    incident_id: IncidentId | None = None
    status: Status
    message: Message
    impact: Impact | None = None
    components: dict[ComponentName, ComponentState] = Field(default={}, max_length=MAX_COMPONENTS)
    channels: list[str] | None = None
    next_update_at: AwareDatetime | None = None
    scheduled_for: AwareDatetime | None = None
    scheduled_until: AwareDatetime | None = None
    reopen: bool = Field(default=False, description="Allow an update to a resolved incident, reopening it.")
    author: Annotated[str, Field(max_length=100), BeforeValidator(_no_surrogates), AfterValidator(_single_line)] = ""

    @model_validator(mode="after")
    def _consistent(self) -> UpdateDraft:
        if (self.title is None) == (self.incident_id is None):
            raise ValueError("give either a title (to open a new incident) or an incident_id (to update one)")
        kind = self.status.kind
        if self.impact is not None and (self.impact is Impact.MAINTENANCE) != (kind is Kind.MAINTENANCE):
            raise ValueError(f"impact {self.impact.value!r} does not go with {kind.value} status {self.status.value!r}")
        if (self.scheduled_for or self.scheduled_until) and kind is not Kind.MAINTENANCE:
            raise ValueError("scheduled_for and scheduled_until are for maintenance statuses only")
        if self.scheduled_for and self.scheduled_until and self.scheduled_until <= self.scheduled_for:
            raise ValueError("scheduled_until must be after scheduled_for")
        return self

    @field_validator("next_update_at", "scheduled_for", "scheduled_until")
    @classmethod
    def _within_reach(cls, value: datetime | None) -> datetime | None:
        """Refuse what the journal could not store and read back: its epoch seconds become UTC times."""
        if value is None:
            return None
        if value - datetime.now(UTC) > timedelta(days=MAX_DAYS_AHEAD):
            raise ValueError(TOO_FAR_AHEAD)
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range: it has no UTC equivalent") from None
        return value

    @field_validator("channels")
    @classmethod
    def _distinct_channels(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("when given, must name at least one channel")
        return None if value is None else list(dict.fromkeys(value))


@dataclass(frozen=True, slots=True)
class ComponentChange:
    """A component named in an update: its state before (None: first named by this incident) and after."""

    name: str
    old: ComponentState | None
    new: ComponentState


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident or maintenance as it stands after its latest update."""

    id: str
    kind: Kind
    name: str
    status: Status
    impact: Impact
    components: Mapping[str, ComponentState]
    created_at: datetime
    updated_at: datetime
    started_at: datetime
    monitoring_at: datetime | None
    resolved_at: datetime | None
    scheduled_for: datetime | None
    scheduled_until: datetime | None
    next_update_at: datetime | None
    update_count: int

    @property
    def is_open(self) -> bool:
        return not self.status.is_final


@dataclass(frozen=True, slots=True)
class Update:
    """One journaled update. `seq` counts from 1 within its incident."""

    id: str
    incident_id: str
    seq: int
    status: Status
    impact: Impact
    message: str
    components: tuple[ComponentChange, ...]
    created_at: datetime
    next_update_at: datetime | None
    author: str = ""


@dataclass(frozen=True, slots=True)
class IncidentHistory:
    """An incident with its updates, oldest first."""

    incident: Incident
    updates: tuple[Update, ...] = field(default=())


# JSON forms, for the journal's columns and for channels that serialise records.


def to_epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def from_epoch_required(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def incident_to_json(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "kind": incident.kind.value,
        "name": incident.name,
        "status": incident.status.value,
        "impact": incident.impact.value,
        "components": {name: state.value for name, state in incident.components.items()},
        "created_at": to_epoch(incident.created_at),
        "updated_at": to_epoch(incident.updated_at),
        "started_at": to_epoch(incident.started_at),
        "monitoring_at": to_epoch(incident.monitoring_at),
        "resolved_at": to_epoch(incident.resolved_at),
        "scheduled_for": to_epoch(incident.scheduled_for),
        "scheduled_until": to_epoch(incident.scheduled_until),
        "next_update_at": to_epoch(incident.next_update_at),
        "update_count": incident.update_count,
    }


def incident_from_json(data: Mapping[str, Any]) -> Incident:
    return Incident(
        id=data["id"],
        kind=Kind(data["kind"]),
        name=data["name"],
        status=Status(data["status"]),
        impact=Impact(data["impact"]),
        components={name: ComponentState(state) for name, state in data["components"].items()},
        created_at=from_epoch_required(data["created_at"]),
        updated_at=from_epoch_required(data["updated_at"]),
        started_at=from_epoch_required(data["started_at"]),
        monitoring_at=from_epoch(data["monitoring_at"]),
        resolved_at=from_epoch(data["resolved_at"]),
        scheduled_for=from_epoch(data["scheduled_for"]),
        scheduled_until=from_epoch(data["scheduled_until"]),
        next_update_at=from_epoch(data["next_update_at"]),
        update_count=data["update_count"],
    )


def changes_to_json(changes: tuple[ComponentChange, ...]) -> list[dict[str, str | None]]:
    return [{"name": c.name, "old": c.old.value if c.old else None, "new": c.new.value} for c in changes]


def changes_from_json(data: list[dict[str, Any]]) -> tuple[ComponentChange, ...]:
    return tuple(
        ComponentChange(c["name"], ComponentState(c["old"]) if c["old"] else None, ComponentState(c["new"]))
        for c in data
    )
