"""The commander's form as typed: parsed from a post, shown again as is after a preview or an error, and
turned into the fields of an update draft, which the same model as the API's and the CLI's validates."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from multidict import MultiDictProxy

from broadcaster.domain.models import MAX_COMPONENTS, Incident
from broadcaster.domain.templates import fill_template
from broadcaster.domain.vocabulary import ComponentState, Status

NEW_INCIDENT: Final = "new"
NEXT_UPDATE_AT: Final = "at"
NEXT_UPDATE_CHOICES: Final = {
    "30m": (timedelta(minutes=30), "Within 30 minutes"),
    "1h": (timedelta(hours=1), "Within 1 hour"),
    "2h": (timedelta(hours=2), "Within 2 hours"),
    "4h": (timedelta(hours=4), "Within 4 hours"),
}
"""The "next update by" choices: how far ahead, and how the form words it."""
EMPTY_COMPONENT_ROWS: Final = 2
"""Blank component rows offered below the picked incident's components (without JavaScript, a fixed number;
a preview offers more)."""
MAX_COMPONENT_ROWS: Final = MAX_COMPONENTS + EMPTY_COMPONENT_ROWS
FIELD_LABELS: Final = {
    "title": "title",
    "incident_id": "incident",
    "status": "status",
    "message": "message",
    "impact": "impact",
    "components": "components",
    "channels": "channels",
    "next_update_at": "next_update",
}
"""Each draft field's name on the form, under which its problems are reported."""
_FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass
class ComponentRow:
    name: str = ""
    state: str = ""
    """The new state, or "" to leave the component as it is."""
    current: str = ""
    """Its state in the picked incident (read from the journal, never from the post), or "" when the incident
    does not have it."""


@dataclass
class FormInput:
    """Every field as typed (strings, unvalidated), so that a form shown again keeps all of it."""

    channels: list[str]
    incident: str = NEW_INCIDENT
    title: str = ""
    status: str = Status.INVESTIGATING.value
    impact: str = ""
    components: list[ComponentRow] = field(default_factory=list)
    message: str = ""
    next_update: str = "1h"
    next_update_time: str = ""
    starter: str = ""
    form_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    """Sent back with the form: the same form sent twice (a double click, a reload) makes one update."""

    @classmethod
    def parse(cls, posted: MultiDictProxy[str]) -> FormInput:
        names = posted.getall("component_name", [])
        states = posted.getall("component_state", [])
        rows = [ComponentRow(name=name, state=state) for name, state in zip(names, states, strict=False)]
        key = posted.get("form_key", "")
        return cls(
            channels=posted.getall("channel", []),
            incident=posted.get("incident", NEW_INCIDENT),
            title=posted.get("title", ""),
            status=posted.get("status", ""),
            impact=posted.get("impact", ""),
            components=rows[:MAX_COMPONENT_ROWS],
            message=posted.get("message", ""),
            next_update=posted.get("next_update", ""),
            next_update_time=posted.get("next_update_time", ""),
            starter=posted.get("starter", ""),
            form_key=key if _FORM_KEY.match(key) else secrets.token_urlsafe(16),
        )

    def with_components_of(self, incident: Incident | None) -> FormInput:
        """The typed rows, then the picked incident's other components (left unchanged unless a state is
        chosen), then blank rows to add new ones."""
        existing = {name: state.value for name, state in incident.components.items()} if incident else {}
        rows = [replace(row, current=existing.get(row.name.strip(), "")) for row in self.components if row.name]
        typed = {row.name.strip() for row in rows}
        rows += [ComponentRow(name=name, current=state) for name, state in existing.items() if name not in typed]
        rows += [ComponentRow() for _ in range(EMPTY_COMPONENT_ROWS)]
        return replace(self, components=rows[: max(MAX_COMPONENT_ROWS, len(existing) + EMPTY_COMPONENT_ROWS)])

    def with_starter(self, templates: Mapping[str, str], *, now: datetime) -> FormInput:
        """The message replaced by the chosen template, filled in (no template chosen: unchanged)."""
        text = templates.get(self.starter)
        return replace(self, message=self.filled(text, now=now) if text is not None else self.message, starter="")

    def filled(self, template: str, *, now: datetime) -> str:
        """`template` with the components this update concerns (set to a state other than operational, or
        not operational before it, as when resolving) and the next update time chosen."""
        affected = [
            row.name.strip()
            for row in self.components
            if row.name.strip() and {row.state, row.current} - {"", ComponentState.OPERATIONAL.value}
        ]
        try:
            next_update_at = self._next_update_at(now)
        except ValueError:  # not a time yet: the sentence says "as soon as we know more" until it is
            next_update_at = None
        return fill_template(template, components=affected, next_update_at=next_update_at)

    def with_new_key(self) -> FormInput:
        return replace(self, form_key=secrets.token_urlsafe(16))

    def draft_fields(self, *, author: str, now: datetime) -> tuple[dict[str, Any], dict[str, str]]:
        """The draft's fields, and the problems found before the model sees them (by form field name)."""
        problems: dict[str, str] = {}
        fields: dict[str, Any] = {"status": self.status, "message": self.message, "author": author}
        if self.incident == NEW_INCIDENT:
            fields["title"] = self.title
        else:
            fields["incident_id"] = self.incident
        if self.impact:
            fields["impact"] = self.impact
        components: dict[str, str] = {}
        for row in self.components:
            name = row.name.strip()
            if row.state and not name:
                problems["components"] = "give each component whose state you set a name"
            elif name and not row.state and not row.current:
                problems["components"] = f"choose a state for {name}"
            elif name and row.state:
                components[name] = row.state
        fields["components"] = components
        fields["channels"] = self.channels
        if not self.channels:
            problems["channels"] = "choose at least one channel"
        try:
            fields["next_update_at"] = self._next_update_at(now)
        except ValueError as exc:
            problems["next_update"] = str(exc)
        return fields, problems

    def typed_fields(self) -> dict[str, Any]:
        """What was typed, for telling a repeated send of this form (the same) from an edited one."""
        return {
            "incident": self.incident,
            "title": self.title,
            "status": self.status,
            "impact": self.impact,
            "components": [[row.name, row.state] for row in self.components if row.name or row.state],
            "message": self.message,
            "next_update": self.next_update,
            "next_update_time": self.next_update_time,
            "channels": self.channels,
        }

    def _next_update_at(self, now: datetime) -> datetime | None:
        if not self.next_update:
            return None
        if self.next_update in NEXT_UPDATE_CHOICES:
            return now + NEXT_UPDATE_CHOICES[self.next_update][0]
        if self.next_update != NEXT_UPDATE_AT:
            raise ValueError("choose one of the offered times")
        if not self.next_update_time:
            raise ValueError("give the time of the next update, or choose another option")
        try:
            moment = datetime.fromisoformat(self.next_update_time)
        except ValueError:
            raise ValueError("not a date and time (e.g. 2026-12-04T15:30)") from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
