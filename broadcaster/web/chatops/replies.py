"""What the service says back in chat: plain text both Slack and Mattermost show as it is (ids in backticks,
bare links they make clickable), never a secret (delivery errors are scrubbed before they are journaled).
Text that came from people or receivers (incident names, authors, errors) goes through chat_safe: an incident
named "<!channel>" must not ping a whole channel when a reply or a reminder quotes it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from broadcaster.domain.models import Incident
from broadcaster.store import Accepted, Delivery
from broadcaster.web.chatops.grammar import USAGE
from broadcaster.web.pages.times import when
from broadcaster.web.views import is_overdue

MAX_LISTED_PROBLEMS: Final = 10
"""Deliveries not delivered that a summary names one by one; the rest are counted."""


_MENTIONS: Final = re.compile(r"@(channel|here|all|everyone)\b", re.IGNORECASE)


def chat_safe(text: str) -> str:
    """`text` shown as it is: Slack's markup characters escaped as Slack asks, and mass mentions broken
    (a zero-width space after the @) so that quoting them notifies nobody."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MENTIONS.sub(lambda match: "@\u200b" + match.group(1), escaped)


def ephemeral(text: str) -> dict[str, Any]:
    """A reply only the commander sees (the same JSON on both platforms)."""
    return {"response_type": "ephemeral", "text": text}


def ledger_link(public_url: str, update_id: str) -> str:
    if public_url:
        return f"{public_url}/updates/{update_id}"
    return f"`broadcaster status {update_id}` (set [service] public_url for a link)"


def accepted_text(accepted: Accepted, *, public_url: str, now: datetime, summary_follows: bool) -> str:
    update, incident = accepted.update, accepted.incident
    if accepted.duplicate:
        ago = max(0, round((now - update.created_at).total_seconds()))
        author = chat_safe(update.author or "someone")
        head = (
            f"Already posted {ago} s ago by {author}: update `{update.id}` of `{incident.id}` "
            f"({chat_safe(incident.name)}). Nothing was sent again."
        )
    else:
        head = (
            f"Accepted update `{update.id}` of `{incident.id}` ({chat_safe(incident.name)}): "
            f"{update.status.label.lower()}, impact {update.impact.value}."
        )
    channels = Counter(d.channel for d in accepted.deliveries)
    going = ", ".join(f"{name} ({count})" for name, count in sorted(channels.items())) or "no channel"
    lines = [head, f"Deliveries: {going}.", f"Ledger: {ledger_link(public_url, update.id)}"]
    if summary_follows and not accepted.duplicate:
        lines.append("A summary of the deliveries follows here when they settle.")
    return "\n".join(lines)


def summary_text(accepted: Accepted, deliveries: Sequence[Delivery], *, public_url: str) -> str:
    """How the update's deliveries stand: all delivered, or which are not and why."""
    update, incident = accepted.update, accepted.incident
    delivered = [d for d in deliveries if d.state.value == "delivered"]
    others = [d for d in deliveries if d.state.value != "delivered"]
    head = f"Update `{update.id}` ({chat_safe(incident.name)}, {update.status.label.lower()}): "
    head += f"{len(delivered)} of {len(deliveries)} deliveries delivered."
    lines = [head]
    for delivery in others[:MAX_LISTED_PROBLEMS]:
        note = delivery.last_error or delivery.detail
        state = delivery.state.value.replace("_", " ")
        shown = f"- {delivery.channel} {chat_safe(delivery.target)}: {state}"
        lines.append(shown + (f" ({chat_safe(note)})" if note else ""))
    if len(others) > MAX_LISTED_PROBLEMS:
        lines.append(f"- and {len(others) - MAX_LISTED_PROBLEMS} more not delivered")
    lines.append(f"Ledger: {ledger_link(public_url, update.id)}")
    return "\n".join(lines)


def status_text(incidents: Sequence[Incident], *, now: datetime) -> str:
    if not incidents:
        return "No open incidents."
    lines = [f"Open incidents ({len(incidents)}):"]
    for incident in incidents:
        line = f"- `{incident.id}` {chat_safe(incident.name)}: {incident.status.label.lower()}, "
        line += f"impact {incident.impact.value}"
        if incident.next_update_at is not None:
            late = " (OVERDUE)" if is_overdue(incident, now=now) else ""
            line += f"; next update due {when(incident.next_update_at)}{late}"
        lines.append(line)
    return "\n".join(lines)


def problem_text(problem: str) -> str:
    """A command that could not be carried out: why, and how to write one."""
    return f"Not done: {problem}\n\n{USAGE}"


def help_text() -> str:
    return USAGE
