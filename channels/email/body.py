"""The two bodies of a status email, plain text and HTML, rendered once per update.

The HTML is self-contained (inline styles, no images, fonts or scripts) and every piece of user text in it
is escaped; its only links are the incident's page on the mirror (when [mirror] public_url is set) and the
unsubscribe page. Nothing here depends on the recipient, so one rendering serves every subscriber."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from broadcaster.domain.models import Incident, Update
from broadcaster.domain.vocabulary import Impact, Kind

EARLIER_UPDATES_SHOWN: Final = 5
_FONT: Final = "-apple-system,'Segoe UI',Helvetica,Arial,sans-serif"
_MUTED: Final = "#57606a"
_RESOLVED: Final = "#1a7f37"
_COLOURS: Final = {
    Impact.NONE: "#1a7f37",
    Impact.MINOR: "#9a6700",
    Impact.MAJOR: "#bc4c00",
    Impact.CRITICAL: "#cf222e",
    Impact.MAINTENANCE: "#0969da",
}


@dataclass(frozen=True, slots=True)
class EmailContent:
    """What one update's email says."""

    incident: Incident
    update: Update
    earlier: Sequence[Update]
    """The incident's previous updates, newest first."""
    incident_url: str
    """The incident's page on the mirror, or "" when [mirror] public_url is not set."""
    unsubscribe_url: str
    sender_domain: str
    manage_marker: str = ""
    """Where each recipient's link to manage their subscription goes, in both bodies ("" for no link):
    message.render_message picks it and splices the links in (see there)."""

    @property
    def subject(self) -> str:
        return subject_line(self.incident, self.update)


def subject_line(incident: Incident, update: Update) -> str:
    """E.g. "[Major outage] API errors - Identified", "[Maintenance] DB upgrade - Scheduled"."""
    return f"[{update.impact.label}] {incident.name} - {update.status.label}"


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _facts(content: EmailContent) -> list[str]:
    """Short lines shared by both bodies: components, maintenance window, next update."""
    incident, update = content.incident, content.update
    facts = []
    if incident.components:
        states = ", ".join(f"{name} ({state.label.lower()})" for name, state in incident.components.items())
        facts.append(f"Affected components: {states}")
    if incident.kind is Kind.MAINTENANCE and incident.scheduled_for is not None:
        until = f" to {when(incident.scheduled_until)}" if incident.scheduled_until is not None else ""
        facts.append(f"Scheduled: {when(incident.scheduled_for)}{until}")
    if update.next_update_at is not None and not update.status.is_final:
        facts.append(f"Next update expected by {when(update.next_update_at)}")
    return facts


def _footer(content: EmailContent) -> str:
    return f"You receive this because you subscribed to status updates from {content.sender_domain}."


def render_text(content: EmailContent) -> str:
    update = content.update
    parts = [
        content.incident.name,
        f"{update.status.label} - {update.impact.label}",
        "",
        update.message,
        "",
    ]
    facts = _facts(content)
    parts += [*facts, ""] if facts else []
    parts.append(f"Posted {when(update.created_at)}")
    if content.incident_url:
        parts.append(f"Follow this incident: {content.incident_url}")
    shown = content.earlier[:EARLIER_UPDATES_SHOWN]
    if shown:
        parts += ["", "Earlier updates", "---------------"]
        for earlier in shown:
            parts += [f"{earlier.status.label} - {when(earlier.created_at)}", earlier.message, ""]
        if len(content.earlier) > len(shown):
            parts.append(f"... and {len(content.earlier) - len(shown)} more on the incident page.")
    parts += ["", "-- ", _footer(content)]
    if content.unsubscribe_url:
        parts.append(f"Unsubscribe: {content.unsubscribe_url}")
    if content.manage_marker:
        parts += ["Choose components or unsubscribe:", content.manage_marker]
    return "\n".join(parts) + "\n"


def _paragraphs(text: str) -> str:
    return html.escape(text).replace("\n", "<br>\n")


def render_html(content: EmailContent) -> str:
    incident, update = content.incident, content.update
    colour = _RESOLVED if update.status.is_final else _COLOURS[update.impact]
    e = html.escape
    rows = [
        f'<p style="margin:0 0 4px;font-size:13px;font-weight:600;color:{colour};">'
        f"{e(update.impact.label)} &middot; {e(update.status.label)}</p>",
        f'<h1 style="margin:0 0 16px;font-size:20px;line-height:1.3;">{e(incident.name)}</h1>',
        f'<p style="margin:0 0 16px;font-size:15px;line-height:1.5;">{_paragraphs(update.message)}</p>',
    ]
    rows += [f'<p style="margin:0 0 8px;font-size:14px;">{e(fact)}</p>' for fact in _facts(content)]
    rows.append(f'<p style="margin:16px 0 0;font-size:13px;color:{_MUTED};">Posted {when(update.created_at)}</p>')
    if content.incident_url:
        rows.append(
            f'<p style="margin:20px 0 0;"><a href="{e(content.incident_url)}" style="display:inline-block;'
            f"padding:10px 16px;background:{colour};color:#ffffff;text-decoration:none;border-radius:4px;"
            f'font-size:14px;">Follow this incident</a></p>'
        )
    earlier = [
        f'<p style="margin:0 0 12px;font-size:14px;line-height:1.5;"><strong>{e(u.status.label)}</strong> '
        f'<span style="color:{_MUTED};">{when(u.created_at)}</span><br>\n{_paragraphs(u.message)}</p>'
        for u in content.earlier[:EARLIER_UPDATES_SHOWN]
    ]
    if len(content.earlier) > EARLIER_UPDATES_SHOWN:
        more = len(content.earlier) - EARLIER_UPDATES_SHOWN
        earlier.append(
            f'<p style="margin:0;font-size:13px;color:{_MUTED};">... and {more} more on the incident page.</p>'
        )
    unsubscribe = (
        f' <a href="{e(content.unsubscribe_url)}" style="color:{_MUTED};">Unsubscribe</a>'
        if content.unsubscribe_url
        else ""
    )
    if content.manage_marker:  # the marker on a line of its own; a URL attribute ignores the line breaks around it
        marker = content.manage_marker
        unsubscribe += f' &middot; <a href="\n{marker}\n" style="color:{_MUTED};">Choose components or unsubscribe</a>'

    cells = [f'<tr><td style="padding:24px;">{"".join(rows)}</td></tr>']
    if earlier:
        cells.append(
            '<tr><td style="padding:0 24px 12px;">'
            f'<h2 style="margin:0 0 12px;font-size:15px;color:{_MUTED};">Earlier updates</h2>'
            f"{''.join(earlier)}</td></tr>"
        )
    cells.append(
        f'<tr><td style="padding:16px 24px;border-top:1px solid #d0d7de;font-size:12px;color:{_MUTED};">'
        f"{e(_footer(content))}{unsubscribe}</td></tr>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(content.subject)}</title></head>\n"
        '<body style="margin:0;padding:0;background:#f6f8fa;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f6f8fa;">'
        '<tr><td align="center" style="padding:24px 12px;">\n'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:600px;'
        f"background:#ffffff;border-radius:6px;border-top:4px solid {colour};font-family:{_FONT};color:#1f2328;"
        '">\n' + "\n".join(cells) + "\n</table></td></tr></table>\n</body></html>\n"
    )
