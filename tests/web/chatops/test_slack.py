"""Slack slash commands over HTTP: signed as Slack signs them, answered at once while a delivery is still
held open, the update fanned out and its summary posted to response_url; forged, replayed, stale, unsigned
and disallowed requests refused with nothing journaled; every command form carried out."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlencode

import pytest

from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.web.chatops import CHATOPS
from tests.channels.webhook.receiver import Answer
from tests.support.helpers import eventually
from tests.web.chatops.conftest import (
    FORM_TYPE,
    MATTERMOST_TOKEN,
    PUBLIC_URL,
    SLACK_SECRET,
    Chat,
    OpenChat,
    reply_text,
    slack_signature,
)
from tests.web.conftest import Service
from tests.web.pages.conftest import PASSWORD, hidden_field

NEW = "new major API errors | component API=partial_outage next 30m Some card payments fail."


async def test_a_signed_command_is_answered_before_its_deliveries_and_then_summarised(chat: Chat) -> None:
    chat.hooks.script("/hook", Answer(status=204, delay=3.0))  # the webhook receiver holds the delivery open
    answer = await chat.slack_command(NEW)
    assert answer.status == 200
    text = reply_text(await answer.json())
    [(author, status, message)] = chat.journaled()  # durable before the answer
    assert (author, status, message) == ("ann (Slack U2147483697)", "investigating", "Some card payments fail.")
    [update] = await chat.runtime.store.incidents()
    deliveries = await chat.runtime.store.deliveries(incident_id=update.id)
    webhook = next(d for d in deliveries if d.channel == "webhook")
    assert not webhook.state.is_final  # the answer did not wait for it
    assert f"Accepted update `{deliveries[0].update_id}` of `{update.id}` (API errors)" in text
    assert f"{PUBLIC_URL}/updates/{deliveries[0].update_id}" in text
    assert "A summary of the deliveries follows here" in text
    assert update.components == {"API": "partial_outage"}
    assert update.next_update_at is not None

    async def summarised() -> bool:
        return bool([r for r in chat.slack.received if r.path.startswith("/commands/")])

    await eventually(summarised, within=20)
    assert "/hook" in chat.hooks.answered  # the summary came once the held delivery was done
    [summary] = [r for r in chat.slack.received if r.path.startswith("/commands/")]
    posted = json.loads(summary.body)
    assert posted["response_type"] == "ephemeral"
    assert f"{len(deliveries)} of {len(deliveries)} deliveries delivered" in posted["text"]


async def test_requests_not_signed_by_the_app_are_401_and_journal_nothing(chat: Chat) -> None:
    forged = await chat.slack_command(NEW, secret="not-the-signing-secret")
    assert (forged.status, (await forged.json())["error"]) == (
        401,
        "the signature does not match: not signed with this app's signing secret",
    )
    stale = await chat.slack_command(NEW, at=time.time() - 301)
    assert stale.status == 401
    assert "more than 5 minutes" in (await stale.json())["error"]
    unsigned = await chat.client.post("/chatops/slack", data=urlencode(chat.slack_fields(NEW)), headers=FORM_TYPE)
    assert unsigned.status == 401
    assert "not signed" in (await unsigned.json())["error"]
    body = urlencode(chat.slack_fields("help"))
    headers = {**FORM_TYPE, **slack_signature(body)}
    tampered = urlencode(chat.slack_fields(NEW, trigger_id=chat.slack_fields("help")["trigger_id"]))
    assert (await chat.client.post("/chatops/slack", data=tampered, headers=headers)).status == 401
    assert (await chat.client.post("/chatops/slack", data=body, headers=headers)).status == 200
    replayed = await chat.client.post("/chatops/slack", data=body, headers=headers)
    assert (replayed.status, (await replayed.json())["error"]) == (401, "this request was received before (a replay)")
    assert chat.journaled() == []
    for answer in (forged, stale, unsigned, replayed):
        assert SLACK_SECRET not in await answer.text()


async def test_commands_from_outside_the_allow_lists_are_refused_and_journal_nothing(open_chat: OpenChat) -> None:
    """Another workspace is a 403; a channel or user of ours not on the lists is told why in chat (a reply chat
    shows only when it is a 200)."""
    allow = 'slack_team_ids = ["T0001"]\nslack_channel_ids = ["C2147483705"]\nslack_user_ids = ["U2147483697"]'
    async with open_chat(auth=allow) as chat:
        for field, value, listing, status in (
            ("team_id", "T9999", "slack_team_ids", 403),
            ("channel_id", "C9999", "slack_channel_ids", 200),
            ("user_id", "U9999\r\nforged log line", "slack_user_ids", 200),
        ):
            refused = await chat.slack_command(NEW, fields={field: value})
            assert refused.status == status
            text = reply_text(await refused.json())
            assert text.startswith("Not allowed: ")
            assert value.split("\r")[0] in text
            assert "\r" not in text and "\n" not in text
            assert f"[auth] {listing}" in text
        assert chat.journaled() == []
        assert (await chat.slack_command(NEW)).status == 200
        assert len(chat.journaled()) == 1


async def test_a_malformed_command_is_told_what_was_wrong_and_shown_the_usage(chat: Chat) -> None:
    answer = await chat.slack_command("new huge API errors | Down.")
    assert answer.status == 200
    text = reply_text(await answer.json())
    assert text.startswith("Not done: unknown impact 'huge'")
    assert "Commands:" in text
    assert "new <impact> <title> | [clauses] <message>" in text
    unknown = reply_text(await (await chat.slack_command("update 0123456789ab identified Fixing.")).json())
    assert unknown.startswith("Not done: no incident with id 0123456789ab")
    assert chat.journaled() == []


async def test_an_incident_is_run_from_chat_from_opening_to_resolving(chat: Chat) -> None:
    assert "No open incidents." in reply_text(await (await chat.slack_command("status")).json())
    await chat.slack_command(NEW)
    [incident] = await chat.runtime.store.incidents()
    listed = reply_text(await (await chat.slack_command("status")).json())
    assert f"`{incident.id}` API errors: investigating, impact major; next update due" in listed
    updated = await chat.slack_command(f"update {incident.id} identified next 1h A faulty deploy; rolling back.")
    assert "Accepted update" in reply_text(await updated.json())
    resolved = await chat.slack_command(f"resolve {incident.id} component API=operational All payments go through.")
    assert "resolved" in reply_text(await resolved.json())
    assert [(status, message) for _author, status, message in chat.journaled()] == [
        ("investigating", "Some card payments fail."),
        ("identified", "A faulty deploy; rolling back."),
        ("resolved", "All payments go through."),
    ]
    assert "No open incidents." in reply_text(await (await chat.slack_command("status")).json())
    assert "Commands:" in reply_text(await (await chat.slack_command("help")).json())


async def test_slack_markup_in_the_text_is_read_as_the_commander_typed_it(chat: Chat) -> None:
    text = "new minor Login &amp; SSO | <@U2|bob> is on it; see <https://status.example.com|status.example.com> &lt;3"
    assert (await chat.slack_command(text)).status == 200
    [incident] = await chat.runtime.store.incidents()
    assert incident.name == "Login & SSO"
    [(_author, _status, message)] = chat.journaled()
    assert message == "@bob is on it; see status.example.com <3"  # the link as typed


async def test_the_same_update_from_slack_mattermost_and_the_form_within_a_minute_is_one(open_chat: OpenChat) -> None:
    async with open_chat(public_url="http://broadcaster.example.com") as chat:  # the form's cookies over HTTP
        await _post_the_same_update_three_ways(chat)


async def _post_the_same_update_three_ways(chat: Chat) -> None:
    first = await chat.slack_command(NEW)
    second = await chat.mattermost_command(NEW)
    again = reply_text(await second.json())
    assert again.startswith("Already posted 0 s ago by ann (Slack U2147483697)")
    assert "Nothing was sent again." in again
    assert len(chat.journaled()) == 1
    [incident] = await chat.runtime.store.incidents()
    deliveries = await chat.runtime.store.deliveries(incident_id=incident.id)
    assert f"`{deliveries[0].update_id}`" in reply_text(await first.json())
    assert all(d.state is not DeliveryState.SUPERSEDED for d in deliveries)
    # The form, every channel ticked, the same words: the commander lands on the update already posted.
    login = await chat.client.get("/login")
    fields = {
        "user": "ann",
        "password": PASSWORD,
        "next": "/",
        "login_token": hidden_field(await login.text(), "login_token"),
    }
    assert (await chat.client.post("/login", data=fields, allow_redirects=False)).status == 303
    html = await (await chat.client.get("/")).text()
    form = {
        "csrf": hidden_field(html, "csrf"),
        "form_key": hidden_field(html, "form_key"),
        "incident": "new",
        "title": "API errors",
        "status": "investigating",
        "impact": "major",
        "component_name": "API",
        "component_state": "partial_outage",
        "message": "Some card payments fail.",
        "next_update": "30m",
        "action": "send",
    }
    posted = [*form.items(), *(("channel", name) for name in chat.runtime.active_channels())]
    sent = await chat.client.post("/", data=posted, allow_redirects=False)
    assert sent.headers["Location"].startswith(f"/updates/{deliveries[0].update_id}?posted=")
    assert len(chat.journaled()) == 1


async def test_nothing_is_parsed_before_the_signature_is_checked(chat: Chat) -> None:
    """A body that is not even a form, unsigned or signed with another secret, is refused as unsigned (401),
    not as a bad form (415, 400): the request's content is not looked at before it is verified."""
    for headers in ({}, slack_signature("not the body", secret="not-the-signing-secret")):
        answer = await chat.client.post(
            "/chatops/slack", data=b"\xff\xfe not a form", headers={"Content-Type": "text/plain", **headers}
        )
        assert answer.status == 401


async def test_a_timestamp_from_the_future_is_refused_too(chat: Chat) -> None:
    answer = await chat.slack_command(NEW, at=time.time() + 301)
    assert answer.status == 401
    assert chat.journaled() == []


async def test_a_command_sent_twice_at_once_from_both_platforms_is_one_update(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    """Two commanders, the same words at the same moment: one update, one summary; and the secrets, tokens
    and response URLs (a credential for 30 minutes) never reach the log."""
    answers = await asyncio.gather(chat.slack_command(NEW), chat.mattermost_command(NEW))
    texts = [reply_text(await answer.json()) for answer in answers]
    assert sorted(text.split(" ", 1)[0] for text in texts) == ["Accepted", "Already"]
    assert len(chat.journaled()) == 1
    [incident] = await chat.runtime.store.incidents()
    update = f"update {incident.id} identified A faulty deploy."
    await asyncio.gather(chat.slack_command(update), chat.mattermost_command(update))
    assert len(chat.journaled()) == 2
    summaries = chat.client.app[CHATOPS].summaries

    async def summarised() -> bool:
        return summaries.waiting == 0 and len(chat.slack.received) + len(chat.hooks.at_prefix("/hooks/commands/")) >= 2

    await eventually(summarised, within=20)
    assert len(chat.slack.received) + len(chat.hooks.at_prefix("/hooks/commands/")) == 2  # one per update
    for secret in (SLACK_SECRET, MATTERMOST_TOKEN, "/commands/T0001/", "/hooks/commands/"):
        assert secret not in caplog.text


async def test_a_platform_not_set_up_refuses_everything(service: Service) -> None:
    """No signing secret, no token: both endpoints are 401 and say what to set."""
    slack = await service.client.post("/chatops/slack", data="text=status", headers=FORM_TYPE)
    mattermost = await service.client.post("/chatops/mattermost", data="text=status&token=x", headers=FORM_TYPE)
    assert (slack.status, mattermost.status) == (401, 401)
    assert "[auth] slack_signing_secret is not set" in (await slack.json())["error"]
    assert "[auth] mattermost_token is not set" in (await mattermost.json())["error"]
