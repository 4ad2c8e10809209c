"""What the subscription pages share: the service's state for them, the page template, the limits, the
links' claims, and each subscription's generation (what makes an old link stale)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from multidict import MultiMapping

from broadcaster.domain.signed_links import LinkExpired, LinkRefused, unseal
from broadcaster.domain.subscriptions import SubscriberKind, state_of
from broadcaster.runtime import Runtime
from broadcaster.web.auth.clients import client_address, limit_key
from broadcaster.web.auth.limits import FailureLimit
from broadcaster.web.keys import RUNTIME
from broadcaster.web.rendering import render
from broadcaster.web.subscriptions.notes import CONFIRM_WINDOW_HOURS
from channels.base import Channel, SendsNotes

HONEYPOT: Final = "website"
"""A field hidden from people (and labelled to be left empty): what fills it is a robot."""
REQUESTS_PER_ADDRESS: Final = 3
REQUESTS_PER_CLIENT: Final = 10
REQUEST_WINDOW: Final = 3600.0
MAX_CHOSEN: Final = 50
"""Components one subscription may name: enough for any page, and few enough for a link to carry."""
NO_STORE: Final = {"Cache-Control": "no-store"}
"""Pages that show a signed link or a signing secret are kept out of every cache."""


@dataclass
class Subscriptions:
    mailer: SendsNotes | None
    """The email channel, when email subscriptions are offered."""
    webhooks: Channel | None
    """The webhook channel, when webhook subscriptions are offered ([webhook] subscribers)."""
    secret: bytes
    per_address: FailureLimit[str]
    per_client: FailureLimit[str]


SUBSCRIPTIONS: Final = web.AppKey("subscriptions", Subscriptions)


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a genuine link says: whose address (an email's, or a webhook endpoint's URL, or its digest),
    the components chosen and a registration's new signing secret, and the generation it was made in."""

    email: str = ""
    url: str = ""
    endpoint: str = ""
    components: tuple[str, ...] = ()
    secret: str = ""
    generation: str = ""
    key: str = ""
    """A webhook manage link's digest of the endpoint's signing secret: a new secret voids older links."""


def token_claims(request: web.Request, purpose: str, token: str) -> LinkClaims | web.Response:
    """The link's claims, or the page that says why it cannot be used (410 expired, 403 otherwise)."""
    try:
        claims = unseal(request.app[SUBSCRIPTIONS].secret, purpose, token, now=request.app[RUNTIME].clock())
        texts = {name: claims.get(name, "") for name in ("email", "url", "endpoint", "secret", "generation", "key")}
        components = claims.get("components", [])
        if not isinstance(components, list) or not all(isinstance(v, str) for v in [*texts.values(), *components]):
            raise LinkRefused("this link is not valid")
    except LinkExpired as exc:
        return page(request, "refused", status=410, reason=str(exc))
    except LinkRefused as exc:
        return page(request, "refused", status=403, reason=str(exc))
    return LinkClaims(components=tuple(components), **texts)


def stale(request: web.Request) -> web.Response:
    """The page for a genuine link that a later change made void (used once, or unsubscribed since)."""
    reason = "this link was made before the subscription last changed; ask for a new one"
    return page(request, "refused", status=410, reason=reason)


async def generation(runtime: Runtime, kind: SubscriberKind, address: str) -> str:
    """A digest of what the journal holds for this subscription now (its record, and for email whether the
    address is suppressed). A link carries the generation it was made in and is void once it changed: a
    confirmation works once, and none revives a subscription that was ended or changed since."""
    subscriber = await runtime.store.subscriber(kind, address)
    suppressed = kind == "email" and await runtime.store.is_suppressed(address)
    held = [state_of(subscriber) if subscriber else None, suppressed]
    return hashlib.sha256(json.dumps(held).encode()).hexdigest()[:16]


def posted_components(form: MultiMapping[object]) -> list[str]:
    """The components ticked on a posted form (at most MAX_CHOSEN)."""
    return [name for name in form.getall("component", []) if isinstance(name, str)][:MAX_CHOSEN]


def component_problem(chosen: Sequence[str], offered: Sequence[str]) -> str:
    """What is wrong with the components chosen, or "" when every one of them is offered."""
    unknown = [name for name in chosen if name not in offered]
    return f"There is no component named {unknown[0]!r} to follow." if unknown else ""


def too_many_requests(request: web.Request, *, addresses: Sequence[str]) -> web.Response | None:
    """Count one request from this client (and for each address); the 429 page when one is over its limit."""
    subscriptions = request.app[SUBSCRIPTIONS]
    client = limit_key(client_address(request, request.app[RUNTIME].settings.service.trusted_proxies))
    waits = [subscriptions.per_client.blocked_for(client)]
    waits += [subscriptions.per_address.blocked_for(address) for address in addresses]
    wait = max(waits)
    if wait:
        headers = {"Retry-After": str(int(wait) + 1)}
        return page(request, "busy", status=429, minutes=max(1, round(wait / 60)), headers=headers)
    subscriptions.per_client.failed(client)
    for address in addresses:
        subscriptions.per_address.failed(address)
    return None


async def known_components(runtime: Runtime) -> list[str]:
    """What may be followed: the configured components, then those incidents named, each name once."""
    names = list(runtime.settings.mirror.components)
    for incident in await runtime.store.incidents(limit=200):
        names += incident.components
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.casefold(), name)
    return list(seen.values())


def as_offered(offered: Sequence[str], followed: frozenset[str]) -> list[str]:
    """The components followed, spelt as the page offers them (an imported list may differ in case)."""
    return [name for name in offered if name.casefold() in followed]


_PAGE_DEFAULTS: Final[dict[str, object]] = {
    "problem": "",
    "hook_problem": "",
    "email": "",
    "url": "",
    "components": [],
    "chosen": (),
    "done": "",
    "secret": "",
    "url_host": "",
    "wrong": False,
    "confirm_hours": CONFIRM_WINDOW_HOURS,
}


def page(
    request: web.Request, name: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: object
) -> web.Response:
    """The subscribe template as page `name`, with what every page of it shows; never cached."""
    settings, subscriptions = request.app[RUNTIME].settings, request.app[SUBSCRIPTIONS]
    return render(
        "subscribe.html.j2",
        status=status,
        headers={**NO_STORE, **(headers or {})},
        page=name,
        site=settings.mirror.page_title,
        status_url=settings.mirror.public_url,
        mail_offered=subscriptions.mailer is not None,
        hooks_offered=subscriptions.webhooks is not None,
        **(_PAGE_DEFAULTS | context),
    )
