"""Mattermost slash commands over HTTP: the command's token (in the body or the Authorization header) is the
gate, the same grammar and intake as Slack, and the summary only to the hosts [chatops] mattermost_hosts
lists."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from broadcaster.web.chatops import CHATOPS
from tests.support.helpers import eventually
from tests.web.chatops.conftest import FORM_TYPE, MATTERMOST_TOKEN, Chat, OpenChat, reply_text

NEW = "new minor Slow logins | Some sign-ins take a minute."


async def test_a_command_with_the_token_is_carried_out_and_summarised_on_response_url(chat: Chat) -> None:
    answer = await chat.mattermost_command(NEW)
    assert answer.status == 200
    assert "Accepted update" in reply_text(await answer.json())
    [(author, status, message)] = chat.journaled()
    assert (author, status, message) == ("bo (Mattermost mmuser1)", "investigating", "Some sign-ins take a minute.")

    async def summarised() -> bool:
        return bool([r for r in chat.hooks.received if r.path.startswith("/hooks/commands/")])

    await eventually(summarised, within=20)
    [summary] = [r for r in chat.hooks.received if r.path.startswith("/hooks/commands/")]
    assert "deliveries delivered" in json.loads(summary.body)["text"]


async def test_the_token_may_come_as_an_authorization_header(chat: Chat) -> None:
    fields = chat.mattermost_fields("status", token="")
    headers = {**FORM_TYPE, "Authorization": f"Token {MATTERMOST_TOKEN}"}
    answer = await chat.client.post("/chatops/mattermost", data=urlencode(fields), headers=headers)
    assert (answer.status, reply_text(await answer.json())) == (200, "No open incidents.")


async def test_a_missing_or_wrong_token_is_401_and_journals_nothing(chat: Chat) -> None:
    wrong = await chat.mattermost_command(NEW, token="not-the-token")
    missing = await chat.mattermost_command(NEW, token="")
    assert (wrong.status, missing.status) == (401, 401)
    assert (await wrong.json())["error"] == "the token does not match this service's Mattermost slash command token"
    assert "no token" in (await missing.json())["error"]
    assert MATTERMOST_TOKEN not in await wrong.text()
    assert chat.journaled() == []


async def test_the_allow_lists_refuse_other_teams_channels_and_users(open_chat: OpenChat) -> None:
    allow = (
        'mattermost_team_ids = ["mmteam1"]\nmattermost_channel_ids = ["mmchannel1"]\nmattermost_user_ids = ["mmuser1"]'
    )
    async with open_chat(auth=allow) as chat:
        for field, listing, status in (
            ("team_id", "mattermost_team_ids", 403),
            ("channel_id", "mattermost_channel_ids", 200),
            ("user_id", "mattermost_user_ids", 200),
        ):
            refused = await chat.mattermost_command(NEW, **{field: "elsewhere"})
            assert refused.status == status
            assert f"[auth] {listing}" in reply_text(await refused.json())
        assert chat.journaled() == []
        assert (await chat.mattermost_command(NEW)).status == 200
        assert len(chat.journaled()) == 1


async def test_no_summary_goes_to_a_host_not_listed(chat: Chat, caplog: pytest.LogCaptureFixture) -> None:
    """A response_url naming another host (a forged command, or a misconfigured one) gets nothing: the
    summary would otherwise let anyone holding the token make the service call any address."""
    summaries = chat.client.app[CHATOPS].summaries
    for n, elsewhere in enumerate(
        (
            f"http://localhost:{chat.hooks.port}/hooks/commands/elsewhere",  # the same server, by another name
            f"http://user:pw@127.0.0.1:{chat.hooks.port}/hooks/commands/elsewhere",
            f"ftp://127.0.0.1:{chat.hooks.port}/hooks/commands/elsewhere",
        )
    ):
        answer = await chat.mattermost_command(f"{NEW} (take {n})", response_url=elsewhere)
        text = reply_text(await answer.json())
        assert "Accepted update" in text
        assert "summary" not in text
        assert summaries.waiting == 0  # nothing will be posted
    assert "the response_url is not Mattermost's" in caplog.text
    assert [r.path for r in chat.hooks.received if r.path.startswith("/hooks/commands/")] == []
