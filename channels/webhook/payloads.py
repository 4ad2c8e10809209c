"""Request bodies of the webhook channel, as the bytes that are signed and sent.

format "json" is the Statuspage webhook envelope, so consumers written for Statuspage keep working:

    {"meta": {"event": "incident.update", "update_id": "...", "sent_at": "2026-05-09T07:35:25.000Z"},
     "page": {"id": "...", "status_indicator": "major", "status_description": "Partial System Outage"},
     "incident": {... the incident as of this update, in Statuspage's incident shape ...}}

meta.event is "incident.update" for every update of an incident or a scheduled maintenance (Statuspage sends
both under "incident"; a maintenance has impact "maintenance" and scheduled_for/scheduled_until), and "ping"
for `broadcaster check` (meta and page only, update_id null). meta.sent_at is when the body was built for
this attempt. A drill's envelope (`broadcaster drill`) carries "drill": true in its meta as well, after
sent_at; no other envelope has the key. "slack", "discord" and "teams" send those services' own JSON
(channels.webhook.chat), where the drill shows in the title's "[DRILL] " prefix."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, Final, Literal

from broadcaster.domain.models import IncidentHistory
from broadcaster.domain.statuspage import Site, incident_json, iso
from channels.base import Job
from channels.webhook.chat import Notice, chat_ping, discord_message, slack_message, teams_message

Format = Literal["json", "slack", "discord", "teams"]
UPDATE_EVENT: Final = "incident.update"
PING_EVENT: Final = "ping"
FORMAT_NAMES: Final[dict[Format, str]] = {
    "json": "Statuspage JSON envelope",
    "slack": "Slack message",
    "discord": "Discord message",
    "teams": "Teams card",
}


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the exact bytes that are signed are the bytes that are sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def page_status(site: Site) -> dict[str, str]:
    return {"id": site.page_id, "status_indicator": site.indicator.value, "status_description": site.description}


class SentAt:
    """meta.sent_at for an epoch time: ISO 8601 in UTC with milliseconds, as `statuspage.iso` writes it.
    Every request stamps one, so the date and time to the second are formatted once a second and only the
    milliseconds per request."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = b""

    def __call__(self, epoch: float) -> bytes:
        # Microseconds rounded as datetime.fromtimestamp rounds them, then truncated to milliseconds as
        # isoformat(timespec="milliseconds") does, so both write the same time for the same float.
        second = int(epoch)
        micro = round((epoch - second) * 1_000_000)
        if micro >= 1_000_000:
            second, micro = second + 1, micro - 1_000_000
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        return b"%s.%03dZ" % (self._prefix, micro // 1000)


class UpdateBodies:
    """One update's bodies, built once and shared by all its targets (the incident as of the update is the
    same for each). Chat bodies are kept whole; the json envelope is kept without its meta, which carries
    the per-attempt sent_at and is joined on for each request. `drill` adds "drill": true to the meta."""

    def __init__(self, site: Site, job: Job, *, drill: bool = False) -> None:
        self.site = site
        self._history = IncidentHistory(job.incident, job.history)
        self._update = job.update
        self._rendered: dict[Format, bytes] = {}
        # Formatted, not encoded: the event is fixed and the update id base32, so neither needs escaping.
        self._meta_head = b'{"meta":{"event":"%s","update_id":"%s","sent_at":"' % (
            UPDATE_EVENT.encode(),
            job.update.id.encode(),
        )
        self._meta_tail = b'","drill":true},' if drill else b'"},'
        self._stamp = SentAt()

    def body(self, form: Format, *, sent_at: float) -> bytes:
        """The body announcing the update in `form`, sent at `sent_at` (epoch seconds)."""
        rendered = self._rendered.get(form)
        if rendered is None:
            rendered = self._rendered[form] = self._render(form)
        if form != "json":
            return rendered
        # rendered is {"page":...,"incident":...} without its opening brace; one join copies the body once.
        return b"".join((self._meta_head, self._stamp(sent_at), self._meta_tail, rendered))

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
        return encode(
            {"meta": {"event": PING_EVENT, "update_id": None, "sent_at": iso(sent_at)}, "page": page_status(site)}
        )
    return encode(chat_ping(form, site.name))
