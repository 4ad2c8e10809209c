"""Self-service subscriptions: people subscribe themselves to the status emails (email_pages.py) or register
a webhook endpoint (webhooks.py), on pages that share common.py."""

from __future__ import annotations

from aiohttp import web

from broadcaster.web.auth.limits import FailureLimit
from broadcaster.web.keys import RUNTIME
from broadcaster.web.subscriptions import email_pages, notes, webhooks
from broadcaster.web.subscriptions.common import (
    REQUEST_WINDOW,
    REQUESTS_PER_ADDRESS,
    REQUESTS_PER_CLIENT,
    SUBSCRIPTIONS,
    Subscriptions,
)
from broadcaster.web.unsubscribe import link_secret
from channels.base import Channel

__all__ = ["install"]


def install(app: web.Application) -> None:
    """The subscription pages; email and webhook subscriptions are offered when [service] public_url says
    where this service answers (every link points there) and their channel is enabled."""
    runtime = app[RUNTIME]
    offered = bool(runtime.settings.service.public_url)
    hooks = runtime.settings.webhook
    app[SUBSCRIPTIONS] = Subscriptions(
        mailer=notes.open_mailer(runtime) if offered else None,
        webhooks=notes.open_channel(runtime, "webhook") if offered and hooks.enabled and hooks.subscribers else None,
        secret=link_secret(runtime.settings),
        per_address=FailureLimit(allowed=REQUESTS_PER_ADDRESS, window=REQUEST_WINDOW),
        per_client=FailureLimit(allowed=REQUESTS_PER_CLIENT, window=REQUEST_WINDOW),
    )
    email_pages.install(app)
    webhooks.install(app)
    app.on_cleanup.append(_close)


async def _close(app: web.Application) -> None:
    subscriptions = app[SUBSCRIPTIONS]
    for channel in (subscriptions.mailer, subscriptions.webhooks):
        if isinstance(channel, Channel):
            await channel.aclose()
