"""What chat hears after the immediate reply: each command's delivery summary on its response_url once the
deliveries settle (or after [chatops] summary_after seconds, with what is known then), and reminders of
overdue next updates on [chatops] reminder_webhook.

Posts go through one aiohttp session with the [network] pins and CA file, a short time limit, and never
follow a redirect (a response_url that redirects elsewhere is refused, not followed). Summaries run in the
background, bounded in number, and are cancelled when the service stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Final

import aiohttp

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.models import Incident
from broadcaster.store import Accepted
from broadcaster.web.chatops.replies import chat_safe, ephemeral, summary_text
from broadcaster.web.overdue import NotToldYet
from broadcaster.web.pages.times import when
from channels.transport.http import client_session
from config import Settings

log = logging.getLogger("broadcaster.chatops")

POST_TIMEOUT: Final = 10.0
"""Seconds for one post to chat, connection included."""
MAX_PENDING_SUMMARIES: Final = 200
"""Summaries waiting at once at most; past it, a command's reply says none will follow."""


class ChatPostError(Exception):
    """A post to chat failed; the message says why, scrubbed of secrets."""


class ChatPoster:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, payload: dict[str, Any]) -> None:
        if self._session is None:  # made on first use, inside the running loop
            timeout = aiohttp.ClientTimeout(total=POST_TIMEOUT)
            self._session = client_session(self._settings.network, limit=10, timeout=timeout)
        scrub = self._settings.scrubber
        try:
            async with self._session.post(url, json=payload, allow_redirects=False) as answer:
                if answer.status >= 300:
                    said = (await answer.text())[:200]
                    raise ChatPostError(scrub(f"chat answered {answer.status}: {said}"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChatPostError(scrub(f"cannot post to chat: {exc or type(exc).__name__}")) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Summaries:
    """The background summaries of this process's chat commands."""

    def __init__(self, dispatcher: Dispatcher, poster: ChatPoster, settings: Settings) -> None:
        self._dispatcher = dispatcher
        self._poster = poster
        self._settings = settings
        self._pending: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def waiting(self) -> int:
        """Summaries not posted yet."""
        return len(self._pending)

    def start(self, accepted: Accepted, response_url: str) -> bool:
        """Post the update's summary to `response_url` once it settles; False when too many are waiting, or
        the service is stopping."""
        if self._closed:
            return False
        if len(self._pending) >= MAX_PENDING_SUMMARIES:
            log.warning("%d chat summaries wait already: none for update %s", len(self._pending), accepted.update.id)
            return False
        task = asyncio.create_task(self._summarise(accepted, response_url))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    async def _summarise(self, accepted: Accepted, response_url: str) -> None:
        settings = self._settings
        try:
            deliveries = await self._dispatcher.settle([accepted.update.id], wait=settings.chatops.summary_after)
            text = summary_text(accepted, deliveries, public_url=settings.service.public_url)
            await self._poster.post(response_url, ephemeral(text))
        except ChatPostError as exc:
            log.warning("the summary of update %s did not reach chat: %s", accepted.update.id, exc)
        except Exception:  # a bug, or the journal failing: logged; the update itself is journaled
            log.exception("the summary of update %s failed", accepted.update.id)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._pending):
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)


class Reminders:
    """Tells chat, on [chatops] reminder_webhook, of each incident that became overdue: once per incident and
    due time, and again at the next check when chat could not be reached."""

    def __init__(self, poster: ChatPoster, settings: Settings) -> None:
        self._poster = poster
        self._settings = settings
        self._not_told = NotToldYet()

    async def __call__(self, overdue: Sequence[Incident]) -> None:
        """Remind of those among `overdue` (every incident overdue now) not reminded of yet."""
        url = self._settings.chatops.reminder_webhook
        fresh = self._not_told.among(overdue)
        if not url or not fresh:
            return
        form = self._settings.service.public_url
        lines = [f"Overdue: {len(fresh)} incident(s) promised an update that has not come."]
        for incident in fresh:
            line = f"- `{incident.id}` {chat_safe(incident.name)}: the next update was due "
            line += when(incident.next_update_at)
            lines.append(line + (f"; post one at {form}/?incident={incident.id}" if form else ""))
        try:
            await self._poster.post(url, {"text": "\n".join(lines)})
        except ChatPostError as exc:
            log.warning("the overdue reminder did not reach chat (tried again at the next check): %s", exc)
            return
        self._not_told.told(fresh)
