"""`POST /chatops/slack` and `POST /chatops/mattermost`: a slash command, verified before anything in it is
parsed, checked against the allow-lists, then carried out through the same intake as the form and the API.

The reply comes at once, as soon as the update is journaled, never waiting for a delivery (Slack gives up
after 3 s); the delivery summary follows on the command's response_url. Requests that are not from the
configured app are 401, commands from outside the allow-lists 403: both journal nothing. A command that
cannot be understood or carried out is answered (200, so chat shows it) with what was wrong and the usage."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qsl

from aiohttp import web

from broadcaster.domain.drafts import SAME_UPDATE_WITHIN, validate_draft
from broadcaster.domain.errors import InputError
from broadcaster.web.api import digest
from broadcaster.web.chatops import commands, replies
from broadcaster.web.chatops.commands import Platform, SlashCommand
from broadcaster.web.chatops.followups import ChatPoster, Summaries
from broadcaster.web.chatops.grammar import (
    ChatCommandError,
    ShowHelp,
    ShowStatus,
    Submission,
    draft_fields,
    parse_command,
)
from broadcaster.web.chatops.signatures import SlackVerifier, Unverified, verify_mattermost, verify_mattermost_header
from broadcaster.web.keys import DISPATCHER, RUNTIME

log = logging.getLogger("broadcaster.chatops")

FORM_TYPE: Final = "application/x-www-form-urlencoded"
STATUS_LISTED: Final = 20
"""Open incidents `status` lists at most (the newest first)."""


@dataclass
class Chatops:
    slack: Platform
    mattermost: Platform
    slack_verifier: SlackVerifier | None
    mattermost_token: str | None
    poster: ChatPoster
    summaries: Summaries


CHATOPS: Final = web.AppKey("chatops", Chatops)


def install(app: web.Application) -> None:
    runtime, dispatcher = app[RUNTIME], app[DISPATCHER]
    settings = runtime.settings
    secret, token = settings.auth.slack_signing_secret, settings.auth.mattermost_token
    poster = ChatPoster(settings)
    app[CHATOPS] = Chatops(
        slack=commands.slack(settings),
        mattermost=commands.mattermost(settings),
        slack_verifier=SlackVerifier(secret.get_secret_value(), clock=runtime.clock) if secret else None,
        mattermost_token=token.get_secret_value() if token else None,
        poster=poster,
        summaries=Summaries(dispatcher, poster, settings),
    )
    app.router.add_post("/chatops/slack", slack_command)
    app.router.add_post("/chatops/mattermost", mattermost_command)
    app.on_cleanup.append(_close)  # after the last request: none can start a summary once they are closed


async def _close(app: web.Application) -> None:
    await app[CHATOPS].summaries.close()
    await app[CHATOPS].poster.close()


async def slack_command(request: web.Request) -> web.Response:
    chat = request.app[CHATOPS]
    if chat.slack_verifier is None:
        return _refused(401, "Slack commands are not set up here: [auth] slack_signing_secret is not set")
    body = await request.read()
    try:
        chat.slack_verifier.verify(request.headers, body)
    except Unverified as exc:
        return _refused(401, str(exc))
    return await _carry_out(request, chat.slack, _form(request, body))


async def mattermost_command(request: web.Request) -> web.Response:
    chat = request.app[CHATOPS]
    if chat.mattermost_token is None:
        return _refused(401, "Mattermost commands are not set up here: [auth] mattermost_token is not set")
    body = await request.read()
    try:
        if not verify_mattermost_header(chat.mattermost_token, request.headers):
            form = _form(request, body)  # the token is in the body: parsed to find it, used only once verified
            verify_mattermost(chat.mattermost_token, form)
            return await _carry_out(request, chat.mattermost, form)
    except Unverified as exc:
        return _refused(401, str(exc))
    return await _carry_out(request, chat.mattermost, _form(request, body))


def _form(request: web.Request, body: bytes) -> dict[str, str]:
    """The slash command's fields. Read only once the request is verified (Slack) or to find its token."""
    if request.content_type != FORM_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"a slash command is posted as {FORM_TYPE}")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50))
    except (UnicodeDecodeError, ValueError):
        raise web.HTTPBadRequest(text="the slash command's fields are not URL-encoded UTF-8") from None


async def _carry_out(request: web.Request, platform: Platform, form: dict[str, str]) -> web.Response:
    command = SlashCommand.from_form(form)
    # Another workspace is turned away (403); a channel or user of ours is told why, in chat (which shows a
    # reply only when it is a 200).
    team_refusal = platform.team_refusal(command)
    if team_refusal is not None:
        log.warning("refused a %s command: %s", platform.name, team_refusal)
        return web.json_response(replies.ephemeral(f"Not allowed: {team_refusal}."), status=403)
    refusal = platform.refusal(command)
    if refusal is not None:
        log.warning("refused a %s command: %s", platform.name, refusal)
        return _reply(f"Not allowed: {refusal}.")
    runtime = request.app[RUNTIME]
    now = datetime.fromtimestamp(runtime.clock(), UTC)
    try:
        parsed = parse_command(platform.plain_text(command.text))
    except ChatCommandError as exc:
        return _reply(replies.problem_text(str(exc)))
    if isinstance(parsed, ShowHelp):
        return _reply(replies.help_text())
    if isinstance(parsed, ShowStatus):
        incidents = await runtime.store.incidents(open_only=True, limit=STATUS_LISTED)
        return _reply(replies.status_text(incidents, now=now))
    return await _submit(request, platform, command, parsed, now)


async def _submit(
    request: web.Request, platform: Platform, command: SlashCommand, parsed: Submission, now: datetime
) -> web.Response:
    runtime = request.app[RUNTIME]
    author = f"{command.user_name or command.user_id} ({platform.name} {command.user_id})".strip()
    try:
        draft = validate_draft(draft_fields(parsed, now=now, author=author[:100]), {})
        accepted = await request.app[DISPATCHER].submit(
            draft,
            idempotency_key=f"chat:{platform.key}:{command.trigger_id}" if command.trigger_id else None,
            request_digest=digest({"user": command.user_id, "text": command.text}),
            same_within=SAME_UPDATE_WITHIN,
        )
    except InputError as exc:  # an unknown or resolved incident, a status of the wrong kind...
        return _reply(replies.problem_text(runtime.settings.scrubber(str(exc))))
    summary_follows = False
    if accepted.duplicate:
        pass  # the first command's summary says it all
    elif platform.response_url_ok(command.response_url):
        summary_follows = request.app[CHATOPS].summaries.start(accepted, command.response_url)
    elif command.response_url:
        log.warning("no summary for update %s: the response_url is not %s's", accepted.update.id, platform.name)
    public_url = runtime.settings.service.public_url
    return _reply(replies.accepted_text(accepted, public_url=public_url, now=now, summary_follows=summary_follows))


def _reply(text: str) -> web.Response:
    return web.json_response(replies.ephemeral(text))


def _refused(status: int, why: str) -> web.Response:
    return web.json_response({"error": why}, status=status)
