"""Chat incoming-webhook bodies: Slack (Block Kit), Discord (embeds) and Microsoft Teams (an Adaptive Card
posted to a Workflows "When a Teams webhook request is received" trigger).

Each service's documented limits are respected by clipping (a refused body would fail the delivery for
good), and what a service interprets in user text is neutralised: Slack mrkdwn control characters are
escaped and Discord mentions are switched off, so an incident message can never ping @everyone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from broadcaster.domain.models import Incident, Update
from broadcaster.domain.statuspage import Site, iso, shortlink

ELLIPSIS: Final = "…"
SLACK_HEADER_LIMIT: Final = 150
SLACK_TEXT_LIMIT: Final = 3000
SLACK_FIELD_LIMIT: Final = 2000
DISCORD_TITLE_LIMIT: Final = 256
DISCORD_DESCRIPTION_LIMIT: Final = 4096
DISCORD_FIELD_LIMIT: Final = 1024
DISCORD_FOOTER_LIMIT: Final = 256  # the API allows 2048; 256 keeps the embed under its 6000 total
ADAPTIVE_CARD_SCHEMA: Final = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_TYPE: Final = "application/vnd.microsoft.card.adaptive"

# One tone per impact, and "resolved" once the incident or maintenance is over, whatever its impact was.
RESOLVED: Final = "resolved"
SLACK_EMOJI: Final = {
    "none": ":large_green_circle:",
    "minor": ":large_yellow_circle:",
    "major": ":large_orange_circle:",
    "critical": ":red_circle:",
    "maintenance": ":large_blue_circle:",
    RESOLVED: ":white_check_mark:",
}
DISCORD_COLOURS: Final = {
    "none": 0x2FAC66,
    "minor": 0xF1C40F,
    "major": 0xE67E22,
    "critical": 0xE74C3C,
    "maintenance": 0x3498DB,
    RESOLVED: 0x2FAC66,
}
TEAMS_STYLES: Final = {
    "none": "good",
    "minor": "warning",
    "major": "attention",
    "critical": "attention",
    "maintenance": "accent",
    RESOLVED: "good",
}
TEAMS_MARKERS: Final = {
    "none": "\U0001f7e2",
    "minor": "\U0001f7e1",
    "major": "\U0001f7e0",
    "critical": "\U0001f534",
    "maintenance": "\U0001f535",
    RESOLVED: "\u2705",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """What a chat message says about one update, independent of the service."""

    title: str
    status: str
    impact: str
    tone: str
    message: str
    components: tuple[str, ...]
    """One "Name: State" line per component the incident affects."""
    url: str | None
    """The incident's page on the mirror; None unless [mirror] public_url makes it absolute."""
    page_name: str
    created_at: datetime

    @classmethod
    def of(cls, site: Site, incident: Incident, update: Update) -> Notice:
        link = shortlink(site, incident.id)
        return cls(
            title=incident.name,
            status=update.status.label,
            impact=incident.impact.label,
            tone=RESOLVED if update.status.is_final else incident.impact.value,
            message=update.message,
            components=tuple(f"{name}: {state.label}" for name, state in incident.components.items()),
            url=link if link.startswith(("http://", "https://")) else None,
            page_name=site.name,
            created_at=update.created_at,
        )


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters, escaped as Slack documents (&amp; &lt; &gt;)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_clip(text: str, limit: int) -> str:
    """Escape, then clip without leaving half an entity (a dangling "&am") at the cut."""
    escaped = slack_escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 4))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


# --- Slack: https://api.slack.com/messaging/webhooks with Block Kit blocks; `text` is the notification fallback.


def slack_message(notice: Notice) -> dict[str, Any]:
    emoji = SLACK_EMOJI[notice.tone]
    fields = [
        {"type": "mrkdwn", "text": slack_clip(f"*Status*\n{notice.status}", SLACK_FIELD_LIMIT)},
        {"type": "mrkdwn", "text": slack_clip(f"*Impact*\n{notice.impact}", SLACK_FIELD_LIMIT)},
    ]
    if notice.components:
        lines = "\n".join(notice.components)
        fields.append({"type": "mrkdwn", "text": slack_clip(f"*Components*\n{lines}", SLACK_FIELD_LIMIT)})
    context = f"{slack_clip(notice.page_name, 200)} · {iso(notice.created_at)}"
    if notice.url:
        context = f"<{slack_escape(notice.url)}|View incident> · {context}"
    fallback = f"{emoji} {notice.title} ({notice.impact}): {notice.status}. {notice.message}"
    return {
        "text": slack_clip(fallback, SLACK_TEXT_LIMIT),
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": clip(f"{emoji} {notice.title}", SLACK_HEADER_LIMIT),
                    "emoji": True,
                },
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": slack_clip(notice.message, SLACK_TEXT_LIMIT)}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


# --- Discord: https://discord.com/developers/docs/resources/webhook#execute-webhook with one embed.


def discord_message(notice: Notice) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [
        {"name": "Status", "value": clip(notice.status, DISCORD_FIELD_LIMIT), "inline": True},
        {"name": "Impact", "value": clip(notice.impact, DISCORD_FIELD_LIMIT), "inline": True},
    ]
    if notice.components:
        fields.append(
            {"name": "Components", "value": clip("\n".join(notice.components), DISCORD_FIELD_LIMIT), "inline": False}
        )
    embed: dict[str, Any] = {
        "title": clip(notice.title, DISCORD_TITLE_LIMIT),
        "description": clip(notice.message, DISCORD_DESCRIPTION_LIMIT),
        "color": DISCORD_COLOURS[notice.tone],
        "fields": fields,
        "timestamp": iso(notice.created_at),
        "footer": {"text": clip(notice.page_name, DISCORD_FOOTER_LIMIT)},
    }
    if notice.url:
        embed["url"] = notice.url
    return {"allowed_mentions": {"parse": []}, "embeds": [embed]}


# --- Teams (Workflows): a message whose one attachment is an Adaptive Card 1.4.


def teams_message(notice: Notice) -> dict[str, Any]:
    facts = [{"title": "Status", "value": notice.status}, {"title": "Impact", "value": notice.impact}]
    if notice.components:
        facts.append({"title": "Components", "value": "\n".join(notice.components)})
    body: list[dict[str, Any]] = [
        {
            "type": "Container",
            "style": TEAMS_STYLES[notice.tone],
            "bleed": True,
            "items": [
                {
                    "type": "TextBlock",
                    "text": f"{TEAMS_MARKERS[notice.tone]} {notice.title}",
                    "size": "Large",
                    "weight": "Bolder",
                    "wrap": True,
                }
            ],
        },
        {"type": "TextBlock", "text": notice.message, "wrap": True},
        {"type": "FactSet", "facts": facts},
        {
            "type": "TextBlock",
            "text": f"{notice.page_name} · {iso(notice.created_at)}",
            "isSubtle": True,
            "size": "Small",
            "wrap": True,
        },
    ]
    card: dict[str, Any] = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if notice.url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "View incident", "url": notice.url}]
    return _teams_envelope(card)


def _teams_envelope(card: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD_TYPE, "contentUrl": None, "content": dict(card)}],
    }


# --- pings for `broadcaster check` on targets that opted in: a short, plainly labelled message.


def chat_ping(service: str, page_name: str) -> dict[str, Any]:
    text = f"Connectivity check from the {page_name} status broadcaster: this channel receives its status updates."
    if service == "slack":
        return {"text": slack_escape(text)}
    if service == "discord":
        return {"content": text, "allowed_mentions": {"parse": []}}
    card = {
        "$schema": ADAPTIVE_CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }
    return _teams_envelope(card)
