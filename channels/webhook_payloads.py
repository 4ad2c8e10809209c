"""Request bodies of the webhook channel, as the bytes that are signed and sent.

format "json" is the Statuspage webhook envelope, so consumers written for Statuspage keep working:

    {"meta": {"event": "incident.update", "update_id": "...", "sent_at": "2026-05-09T07:35:25.000Z"},
     "page": {"id": "...", "status_indicator": "major", "status_description": "Partial System Outage"},
     "incident": {... the incident as of this update, in Statuspage's incident shape ...}}

meta.event is "incident.update" for every update of an incident or a scheduled maintenance (Statuspage sends
both under "incident"; a maintenance has impact "maintenance" and scheduled_for/scheduled_until), and "ping"
for `broadcaster check` (meta and page only, update_id null). meta.sent_at is when the body was built for
this attempt. "slack", "discord" and "teams" send those services' own JSON (channels.webhook_chat)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final, Literal

from broadcaster.models import IncidentHistory
from broadcaster.statuspage import Site, incident_json, iso
from channels.base import Job
from channels.webhook_chat import Notice, chat_ping, discord_message, slack_message, teams_message

Format = Literal["json", "slack", "discord", "teams"]
UPDATE_EVENT: Final = "incident.update"
PING_EVENT: Final = "ping"


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the exact bytes that are signed are the bytes that are sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def page_status(site: Site) -> dict[str, str]:
    return {"id": site.page_id, "status_indicator": site.indicator.value, "status_description": site.description}


class UpdateBodies:
    """One update's bodies, built once and shared by all its targets (the incident as of the update is the
    same for each). Chat bodies are kept whole; the json envelope is kept without its meta, which carries
    the per-attempt sent_at and is joined on for each request."""

    def __init__(self, site: Site, job: Job) -> None:
        self.site = site
        self._update_id = job.update.id
        self._history = IncidentHistory(job.incident, job.history)
        self._update = job.update
        self._rendered: dict[Format, bytes] = {}

    def body(self, form: Format, *, sent_at: datetime) -> bytes:
        """The body announcing the update in `form`."""
        rendered = self._rendered.get(form)
        if rendered is None:
            rendered = self._rendered[form] = self._render(form)
        if form != "json":
            return rendered
        # Formatted, not encoded: the event is fixed, the update id is base32 and the time ISO 8601, so none
        # needs escaping, and this runs once per request.
        meta = b'{"meta":{"event":"%s","update_id":"%s","sent_at":"%s"},' % (
            UPDATE_EVENT.encode(),
            self._update_id.encode(),
            (iso(sent_at) or "").encode(),
        )
        return meta + rendered  # {"page":...,"incident":...} without its opening brace

    def _render(self, form: Format) -> bytes:
        if form == "json":
            envelope = {"page": page_status(self.site), "incident": incident_json(self.site, self._history)}
            return encode(envelope)[1:]  # without its opening brace: the meta goes before it
        notice = Notice.of(self.site, self._history.incident, self._update)
        if form == "slack":
            return encode(slack_message(notice))
        if form == "discord":
            return encode(discord_message(notice))
        return encode(teams_message(notice))


def ping_body(form: Format, site: Site, *, sent_at: datetime) -> bytes:
    """The body of a check's ping: the envelope without an incident, or a short labelled chat message."""
    if form == "json":
        return encode({"meta": {"event": PING_EVENT, "update_id": None, "sent_at": iso(sent_at)},
                       "page": page_status(site)})  # fmt: skip
    return encode(chat_ping(form, site.name))
