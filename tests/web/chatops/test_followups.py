"""What chat hears after the reply: a summary with what is known once [chatops] summary_after has passed, a
response_url that redirects not followed, and reminders of overdue next updates on the reminder webhook."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from functools import partial

import pytest

from broadcaster.web.chatops import CHATOPS, remind
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


async def test_overdue_incidents_are_reminded_on_the_reminder_webhook_once(chat: Chat) -> None:
    assert "Accepted update" in reply_text(await (await chat.slack_command(NEW)).json())
    [incident] = await chat.runtime.store.incidents()
    assert incident.next_update_at is not None
    due = incident.next_update_at
    chat.runtime.clock = (due + timedelta(minutes=1)).timestamp
    poster = chat.client.app[CHATOPS].poster
    watching = asyncio.create_task(
        watch_overdue(chat.runtime, interval=0.05, remind=partial(remind, poster, chat.runtime.settings))
    )
    try:

        async def reminded() -> bool:
            return bool(chat.hooks.at("/hooks/reminders"))

        await eventually(reminded)
        await asyncio.sleep(0.3)  # several more checks: the same lateness is not reminded again
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
    [reminder] = chat.hooks.at("/hooks/reminders")
    text = json.loads(reminder.body)["text"]
    assert text.startswith("Overdue: 1 incident(s) promised an update that has not come.")
    assert f"`{incident.id}` API errors" in text
    assert f"{PUBLIC_URL}/?incident={incident.id}" in text
