"""What chat hears after the reply: a summary with what is known once [chatops] summary_after has passed, a
response_url that redirects not followed, and reminders of overdue next updates on the reminder webhook."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta

import pytest

from broadcaster.web.chatops import CHATOPS, Reminders
from broadcaster.web.overdue import watch_overdue
from tests.channels.webhook.receiver import Answer
from tests.support.helpers import eventually
from tests.web.chatops.conftest import PUBLIC_URL, Chat, OpenChat, reply_text

NEW = "new major API errors | next 30m Some card payments fail."


async def test_the_summary_comes_after_summary_after_with_what_is_known(open_chat: OpenChat) -> None:
    async with open_chat(summary_after=0.5) as chat:
        chat.hooks.script("/hook", Answer(status=204, delay=3.0))  # held past summary_after
        assert (await chat.mattermost_command(NEW)).status == 200

        async def summarised() -> bool:
            return bool([r for r in chat.hooks.received if r.path.startswith("/hooks/commands/")])

        await eventually(summarised, within=5)
        [summary] = [r for r in chat.hooks.received if r.path.startswith("/hooks/commands/")]
        text = json.loads(summary.body)["text"]
        assert "1 of 2 deliveries delivered" in text
        assert "- webhook ops: in flight" in text


async def test_a_response_url_that_redirects_is_not_followed(chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    moved = chat.hooks.url("/hooks/moved")
    fields = chat.mattermost_fields(NEW)
    chat.hooks.script(fields["response_url"].removeprefix(chat.hooks.url("")), Answer(302, {"Location": moved}))
    assert (await chat.mattermost_command(NEW, response_url=fields["response_url"])).status == 200
    summaries = chat.client.app[CHATOPS].summaries

    async def done() -> bool:
        return summaries.waiting == 0

    await eventually(done, within=15)
    assert "chat answered 302" in caplog.text
    assert chat.hooks.at("/hooks/moved") == []


async def test_overdue_incidents_are_reminded_once_and_again_if_chat_missed_it(chat: Chat) -> None:
    """The reminder webhook fails the first time: the next check tries again; once it went through, later
    checks say nothing more of the same lateness."""
    chat.hooks.script("/hooks/reminders", Answer(status=500, body=b"try later"), Answer(status=200))
    assert "Accepted update" in reply_text(await (await chat.slack_command(NEW)).json())
    [incident] = await chat.runtime.store.incidents()
    assert incident.next_update_at is not None
    chat.runtime.clock = (incident.next_update_at + timedelta(minutes=1)).timestamp
    remind = Reminders(chat.client.app[CHATOPS].poster, chat.runtime.settings)
    watching = asyncio.create_task(watch_overdue(chat.runtime, interval=0.05, remind=remind))
    try:

        async def reminded() -> bool:
            return len(chat.hooks.at("/hooks/reminders")) == 2

        await eventually(reminded)
        await asyncio.sleep(0.3)  # several more checks: the same lateness is not reminded again
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    failed, reminder = chat.hooks.at("/hooks/reminders")
    assert failed.body == reminder.body
    text = json.loads(reminder.body)["text"]
    assert text.startswith("Overdue: 1 incident(s) promised an update that has not come.")
    assert f"`{incident.id}` API errors" in text
    assert f"{PUBLIC_URL}/?incident={incident.id}" in text


async def test_a_name_in_chat_markup_is_quoted_not_acted_on(chat: Chat) -> None:
    """An incident named to ping everyone (from the form, say) is shown as text in chat's replies."""
    answer = await chat.mattermost_command("new minor <!channel> @here Logins | Slow.")
    text = reply_text(await answer.json())
    assert "(&lt;!channel&gt; @\u200bhere Logins)" in text
    assert "<!channel>" not in text
