"""Slack, Discord and Teams targets receive those services' documented incoming-webhook JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from broadcaster.domain.vocabulary import DeliveryState
from channels.webhook.chat import (
    DISCORD_COLOURS,
    Notice,
    discord_message,
    slack_clip,
    slack_message,
    teams_message,
)
from tests.channels.webhook.conftest import Configure, broadcasting, post, settle, target
from tests.channels.webhook.receiver import Receiver

MESSAGE = "Errors on <api> & retries; see <!channel> @everyone"


async def deliver_formats(configure: Configure, receiver: Receiver, **update: Any) -> tuple[str, dict[str, Any]]:
    settings = configure(
        *(target(receiver.url(f"/{form}"), format=form, name=form) for form in ("slack", "discord", "teams"))
    )
    async with broadcasting(settings) as (runtime, dispatcher):
        accepted = await post(
            runtime,
            dispatcher,
            message=MESSAGE,
            impact="critical",
            components={"API": "major_outage", "Dashboard": "degraded_performance"},
            **update,
        )
        deliveries = await settle(dispatcher, accepted)
    assert {d.state for d in deliveries.values()} == {DeliveryState.DELIVERED}
    return accepted.incident.id, {form: json.loads(receiver.at(f"/{form}")[0].body) for form in deliveries}


async def test_slack_gets_blocks_with_a_marker_and_escaped_text(configure: Configure, receiver: Receiver) -> None:
    """Slack: text fallback plus header/section/fields/context blocks, an emoji per impact, mrkdwn escaped."""
    incident_id, bodies = await deliver_formats(configure, receiver)
    slack = bodies["slack"]
    assert set(slack) == {"text", "blocks"}
    assert slack["text"].startswith(":red_circle: API errors (Critical outage): Investigating. Errors on &lt;api&gt;")
    header, message, facts, context = slack["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": ":red_circle: API errors", "emoji": True},
    }
    assert message == {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "Errors on &lt;api&gt; &amp; retries; see &lt;!channel&gt; @everyone"},
    }
    assert facts == {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": "*Status*\nInvestigating"},
            {"type": "mrkdwn", "text": "*Impact*\nCritical outage"},
            {"type": "mrkdwn", "text": "*Components*\nAPI: Major outage\nDashboard: Degraded performance"},
        ],
    }
    assert context["type"] == "context"
    (element,) = context["elements"]
    assert element["type"] == "mrkdwn"
    assert element["text"].startswith(
        f"<https://status.example.com/incidents/{incident_id}.html|View incident> · Example status · 20"
    )


async def test_discord_gets_an_embed_with_a_colour_and_no_mentions(configure: Configure, receiver: Receiver) -> None:
    """Discord: one embed (title, description, url, integer colour, fields, timestamp, footer); mentions disabled."""
    incident_id, bodies = await deliver_formats(configure, receiver)
    discord = bodies["discord"]
    assert discord["allowed_mentions"] == {"parse": []}
    (embed,) = discord["embeds"]
    assert set(embed) == {"title", "description", "url", "color", "fields", "timestamp", "footer"}
    assert (embed["title"], embed["description"]) == ("API errors", MESSAGE)
    assert embed["url"] == f"https://status.example.com/incidents/{incident_id}.html"
    assert embed["color"] == DISCORD_COLOURS["critical"] == 0xE74C3C
    assert embed["fields"] == [
        {"name": "Status", "value": "Investigating", "inline": True},
        {"name": "Impact", "value": "Critical outage", "inline": True},
        {"name": "Components", "value": "API: Major outage\nDashboard: Degraded performance", "inline": False},
    ]
    assert datetime.fromisoformat(embed["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert embed["footer"] == {"text": "Example status"}


async def test_teams_gets_an_adaptive_card_message(configure: Configure, receiver: Receiver) -> None:
    """Teams Workflows: a message with one Adaptive Card 1.4 attachment, styled per impact, with a link action."""
    incident_id, bodies = await deliver_formats(configure, receiver)
    teams = bodies["teams"]
    assert teams["type"] == "message"
    (attachment,) = teams["attachments"]
    assert (attachment["contentType"], attachment["contentUrl"]) == ("application/vnd.microsoft.card.adaptive", None)
    card = attachment["content"]
    assert (card["type"], card["version"], card["$schema"]) == (
        "AdaptiveCard",
        "1.4",
        "http://adaptivecards.io/schemas/adaptive-card.json",
    )
    banner, message, facts, footer = card["body"]
    assert (banner["type"], banner["style"]) == ("Container", "attention")
    assert banner["items"] == [
        {"type": "TextBlock", "text": "\U0001f534 API errors", "size": "Large", "weight": "Bolder", "wrap": True}
    ]
    assert message == {"type": "TextBlock", "text": MESSAGE, "wrap": True}
    assert facts == {
        "type": "FactSet",
        "facts": [
            {"title": "Status", "value": "Investigating"},
            {"title": "Impact", "value": "Critical outage"},
            {"title": "Components", "value": "API: Major outage\nDashboard: Degraded performance"},
        ],
    }
    assert footer["type"] == "TextBlock" and footer["isSubtle"] is True
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "View incident",
            "url": f"https://status.example.com/incidents/{incident_id}.html",
        }
    ]


async def test_resolved_updates_turn_green(configure: Configure, receiver: Receiver) -> None:
    """Once resolved, every chat format shows the resolved marker or colour, whatever the impact was."""
    settings = configure(
        *(target(receiver.url(f"/{form}"), format=form, name=form) for form in ("slack", "discord", "teams"))
    )
    async with broadcasting(settings) as (runtime, dispatcher):
        first = await post(runtime, dispatcher, impact="major")
        second = await post(runtime, dispatcher, incident_id=first.incident.id, status="resolved", message="Fixed.")
        await settle(dispatcher, second)
    slack, discord, teams = (json.loads(receiver.at(f"/{form}")[1].body) for form in ("slack", "discord", "teams"))
    assert slack["blocks"][0]["text"]["text"] == ":white_check_mark: API errors"
    assert discord["embeds"][0]["color"] == DISCORD_COLOURS["resolved"]
    assert teams["attachments"][0]["content"]["body"][0]["style"] == "good"


def notice(**changes: Any) -> Notice:
    fields: dict[str, Any] = {
        "title": "API errors",
        "status": "Investigating",
        "impact": "Major outage",
        "tone": "major",
        "message": "x",
        "components": (),
        "url": None,
        "page_name": "Example status",
        "created_at": datetime(2026, 5, 9, tzinfo=UTC),
    }
    return Notice(**{**fields, **changes})


def test_long_texts_are_clipped_to_each_services_limits() -> None:
    """Over-long titles and messages are cut to Slack's, Discord's limits with an ellipsis; nothing is refused."""
    long = notice(title="T" * 400, message="m" * 6000, components=tuple(f"C{i}: Major outage" for i in range(200)))
    slack = slack_message(long)
    assert len(slack["blocks"][0]["text"]["text"]) == 150
    assert len(slack["blocks"][1]["text"]["text"]) == 3000 and slack["blocks"][1]["text"]["text"].endswith("…")
    assert all(len(field["text"]) <= 2000 for field in slack["blocks"][2]["fields"])
    assert len(slack["text"]) <= 3000
    (embed,) = discord_message(long)["embeds"]
    assert (len(embed["title"]), len(embed["description"])) == (256, 4096)
    assert all(len(field["value"]) <= 1024 for field in embed["fields"])
    total = (
        len(embed["title"])
        + len(embed["description"])
        + len(embed["footer"]["text"])
        + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )
    assert total <= 6000  # Discord's limit for all of an embed's text
    assert "url" not in embed  # no public_url: no link rather than a relative one Discord would refuse
    assert "actions" not in teams_message(long)["attachments"][0]["content"]


def test_slack_clipping_never_splits_an_entity() -> None:
    """Cutting escaped text never leaves a partial &amp; / &lt; at the end."""
    for offset in range(6):
        clipped = slack_clip("a" * (20 - offset) + "&" * 10, 20)
        assert len(clipped) <= 20 and clipped.endswith("…")
        body = clipped.removesuffix("…")
        assert body.count("&") == body.count("&amp;")
