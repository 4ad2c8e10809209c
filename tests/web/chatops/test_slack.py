"""Slack slash commands over HTTP: signed as Slack signs them, answered at once while a delivery is still
held open, the update fanned out and its summary posted to response_url; forged, replayed, stale, unsigned
and disallowed requests refused with nothing journaled; every command form carried out."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from broadcaster.domain.vocabulary import DeliveryState
from tests.channels.webhook.receiver import Answer
from tests.support.helpers import eventually
from tests.web.chatops.conftest import FORM_TYPE, PUBLIC_URL, SLACK_SECRET, Chat, OpenChat, reply_text, slack_signature
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


async def test_commands_from_outside_the_allow_lists_are_403_and_journal_nothing(open_chat: OpenChat) -> None:
    allow = 'slack_team_ids = ["T0001"]\nslack_channel_ids = ["C2147483705"]\nslack_user_ids = ["U2147483697"]'
    async with open_chat(auth=allow) as chat:
        for field, value, listing in (
            ("team_id", "T9999", "slack_team_ids"),
            ("channel_id", "C9999", "slack_channel_ids"),
            ("user_id", "U9999", "slack_user_ids"),
        ):
            refused = await chat.slack_command(NEW, fields={field: value})
            assert refused.status == 403
            text = reply_text(await refused.json())
            assert value in text
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
    assert message == "@bob is on it; see https://status.example.com <3"


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
    assert sent.headers["Location"] == f"/updates/{deliveries[0].update_id}?posted=before"
    assert len(chat.journaled()) == 1
