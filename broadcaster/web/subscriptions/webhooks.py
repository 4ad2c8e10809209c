"""Customers register their own webhook endpoint: `POST /subscribe/webhook`, confirmed by the code the
endpoint's signed ping carries, and managed (components, a new signing secret, unsubscribing) through a
signed link.

Nothing is kept for an endpoint nobody confirmed: the pending registration (URL, components, the new
signing secret and the subscription's generation) rides in a signed token in the page, valid for an hour,
and the code is an HMAC of that token, so only someone who received the ping can produce it. An endpoint
may instead answer the ping with `{"confirmed": "<code>"}` (or the bare code): not with the ping's own
body, so an endpoint that echoes what it is sent does not confirm itself. The URL must resolve to public
addresses only (channels.transport.guard), unless [webhook] allow_private_subscriber_urls says otherwise;
the same guard holds at every delivery. A management link names the endpoint by a digest and is bound to
its current signing secret, so a new secret, an unsubscribe or someone else's registration voids it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Sequence
from typing import Final

import aiohttp
from aiohttp import web

from broadcaster.domain.signed_links import seal
from broadcaster.domain.subscriptions import (
    REGISTER_PURPOSE,
    WEBHOOK_MANAGE_PURPOSE,
    Subscriber,
    endpoint_host,
    endpoint_id,
)
from broadcaster.runtime import Runtime
from broadcaster.web.forms import text_field
from broadcaster.web.keys import RUNTIME
from broadcaster.web.subscriptions.common import (
    HONEYPOT,
    SUBSCRIPTIONS,
    LinkClaims,
    as_offered,
    component_problem,
    generation,
    known_components,
    page,
    posted_components,
    stale,
    token_claims,
    too_many_requests,
)
from channels.base import ConfirmsEndpoints, DeliveryError
from channels.transport.guard import host_of, public_endpoint_refusal

log = logging.getLogger("broadcaster.web")

REGISTER_PATH: Final = "/subscribe/webhook"
CONFIRM_PATH: Final = "/subscribe/webhook/confirm"
MANAGE_PATH: Final = "/subscribe/webhook/manage"
REGISTRATION_WINDOW: Final = 3600.0
MAX_URL: Final = 2000
RESOLVE_TIMEOUT: Final = 5.0
"""Seconds a registration waits for its endpoint's name to resolve."""
NOT_PUBLIC: Final = (
    "This endpoint cannot be used: give an http:// or https:// URL whose host name resolves to public internet "
    "addresses only (not a private, loopback or link-local one)."
)


def install(app: web.Application) -> None:
    app.router.add_post(REGISTER_PATH, register)
    app.router.add_post(CONFIRM_PATH, confirm)
    app.router.add_get(MANAGE_PATH, manage_page)
    app.router.add_post(MANAGE_PATH, manage)


def confirmer(request: web.Request) -> ConfirmsEndpoints | None:
    """The webhook channel, when webhook subscriptions are offered; None otherwise."""
    confirms = request.app[SUBSCRIPTIONS].webhooks
    return confirms if isinstance(confirms, ConfirmsEndpoints) else None


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def confirmation_code(key: bytes, token: str) -> str:
    """Eight letters and digits only the service can derive from a registration token."""
    digest = hmac.new(key, f"webhook-code.{token}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:8]


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


async def register(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    channel = confirmer(request)
    if channel is None:
        return page(request, "off", status=404)
    form = await request.post()
    offered = await known_components(runtime)
    url = text_field(form, "url").strip()
    if text_field(form, HONEYPOT):
        return page(request, "form", components=offered)  # a robot: nothing pinged
    host = _host_or_none(url)
    busy = too_many_requests(request, addresses=[f"endpoint-host:{host}"] if host else [])  # before any DNS
    if busy is not None:
        return busy
    chosen = posted_components(form)
    problem = component_problem(chosen, offered) or await _refusal(runtime, url)
    if problem:
        return page(request, "form", status=400, hook_problem=problem, components=offered, url=url)
    return await _ping(request, channel, url, chosen)


def _host_or_none(url: str) -> str | None:
    try:
        return host_of(url).lower()
    except ValueError:
        return None


async def _ping(request: web.Request, channel: ConfirmsEndpoints, url: str, chosen: list[str]) -> web.Response:
    """Ping the endpoint with a new secret and its code: subscribed at once if it answers as it may, else
    the page asking for the code (and showing the secret, once)."""
    runtime, subscriptions = request.app[RUNTIME], request.app[SUBSCRIPTIONS]
    secret = new_secret()
    pending = {"url": url, "components": chosen, "secret": secret}
    pending["generation"] = await generation(runtime, "webhook", url)
    until = runtime.clock() + REGISTRATION_WINDOW
    try:
        token = seal(subscriptions.secret, REGISTER_PURPOSE, pending, until=until)
    except ValueError:
        offered = await known_components(runtime)
        problem = "Choose fewer components (or none, to follow them all), or a shorter URL."
        return page(request, "form", status=400, hook_problem=problem, components=offered, url=url)
    code = confirmation_code(subscriptions.secret, token)
    try:
        answer = await channel.ping_endpoint(url, secret, code)
    except DeliveryError as exc:
        problem = f"Your endpoint did not accept the ping: {runtime.settings.scrubber(str(exc))}"
        offered = await known_components(runtime)
        return page(request, "form", status=400, hook_problem=problem, components=offered, url=url)
    if _answers_with(answer, code):
        return await _subscribe(request, url, chosen, secret, shown_secret=secret)
    return page(request, "hook-pending", token=token, secret=secret, url_host=endpoint_host(url))


async def _refusal(runtime: Runtime, url: str) -> str:
    if not url or len(url) > MAX_URL or not url.isprintable() or _host_or_none(url) is None:
        return "Give the http:// or https:// URL of your endpoint."
    if runtime.settings.webhook.allow_private_subscriber_urls:  # for testing: any address
        return ""
    # Without [network] pins: a customer's endpoint is resolved as the world resolves it. The answer says
    # nothing of what a name resolved to, so the form cannot be used to map the service's network.
    resolver = aiohttp.ThreadedResolver()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            refusal = await public_endpoint_refusal(url, resolver)
    except TimeoutError:
        refusal = "its host name did not resolve in time"
    finally:
        await resolver.close()
    if refusal is not None:
        log.info("a webhook registration was refused: %s", refusal)
        return NOT_PUBLIC
    return ""


def _answers_with(answer: bytes, code: str) -> bool:
    """The endpoint answered the ping with its code: the bare code, or JSON {"confirmed": code}."""
    text = answer.decode("utf-8", "replace").strip()
    if hmac.compare_digest(text.encode(), code.encode()):
        return True
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and hmac.compare_digest(str(data.get("confirmed", "")).encode(), code.encode())


async def confirm(request: web.Request) -> web.Response:
    runtime, subscriptions = request.app[RUNTIME], request.app[SUBSCRIPTIONS]
    form = await request.post()
    token = text_field(form, "token")
    claims = token_claims(request, REGISTER_PURPOSE, token)
    if isinstance(claims, web.Response):
        return claims
    if claims.generation != await generation(runtime, "webhook", claims.url):
        return stale(request)
    given = text_field(form, "code").strip().upper()
    if not hmac.compare_digest(given.encode(), confirmation_code(subscriptions.secret, token).encode()):
        return page(request, "hook-pending", status=400, token=token, url_host=endpoint_host(claims.url), wrong=True)
    return await _subscribe(request, claims.url, claims.components, claims.secret, shown_secret="")


async def _subscribe(
    request: web.Request, url: str, components: Sequence[str], secret: str, *, shown_secret: str
) -> web.Response:
    runtime = request.app[RUNTIME]
    subscriber = Subscriber(
        kind="webhook", address=url, components=tuple(components), since=runtime.clock(), secret=secret
    )
    await runtime.store.save_subscribers([subscriber])
    log.info("a webhook endpoint confirmed its subscription")
    return page(
        request,
        "hook-subscribed",
        secret=shown_secret,
        url_host=endpoint_host(url),
        chosen=components,
        manage=_manage_link(request, subscriber),
    )


def _manage_token(request: web.Request, subscriber: Subscriber) -> str:
    claims = {"endpoint": endpoint_id(subscriber.address), "key": secret_digest(subscriber.secret)}
    return seal(request.app[SUBSCRIPTIONS].secret, WEBHOOK_MANAGE_PURPOSE, claims, until=None)


def _manage_link(request: web.Request, subscriber: Subscriber) -> str:
    url = request.app[RUNTIME].settings.service.public_url
    return f"{url}{MANAGE_PATH}?token={_manage_token(request, subscriber)}"


async def _managed(request: web.Request, claims: LinkClaims) -> Subscriber | None:
    """The subscriber a management link names, while its signing secret is the one the link was made for."""
    for subscriber in await request.app[RUNTIME].store.subscribers("webhook"):
        if endpoint_id(subscriber.address) == claims.endpoint:
            return subscriber if hmac.compare_digest(secret_digest(subscriber.secret), claims.key) else None
    return None


async def manage_page(request: web.Request) -> web.Response:
    claims = token_claims(request, WEBHOOK_MANAGE_PURPOSE, request.query.get("token", ""))
    if isinstance(claims, web.Response):
        return claims
    subscriber = await _managed(request, claims)
    if subscriber is None:
        return stale(request)
    return await _manage_view(request, subscriber)


async def _manage_view(
    request: web.Request, subscriber: Subscriber | None, *, done: str = "", secret: str = "", host: str = ""
) -> web.Response:
    offered = await known_components(request.app[RUNTIME])
    return page(
        request,
        "hook-manage",
        token=_manage_token(request, subscriber) if subscriber else "",
        manage=_manage_link(request, subscriber) if subscriber else "",
        subscriber=subscriber,
        url_host=endpoint_host(subscriber.address) if subscriber else host,
        components=offered,
        chosen=as_offered(offered, subscriber.followed) if subscriber else [],
        done=done,
        secret=secret,
    )


async def manage(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    form = await request.post()
    claims = token_claims(request, WEBHOOK_MANAGE_PURPOSE, text_field(form, "token"))
    if isinstance(claims, web.Response):
        return claims
    subscriber = await _managed(request, claims)
    if subscriber is None:
        return stale(request)
    action = text_field(form, "action")
    if action == "unsubscribe":
        await runtime.store.remove_subscriber("webhook", subscriber.address)
        return await _manage_view(request, None, done="unsubscribed", host=endpoint_host(subscriber.address))
    components, secret = subscriber.components, subscriber.secret
    if action == "rotate":
        secret = new_secret()
    else:
        offered = await known_components(runtime)
        components = tuple(name for name in posted_components(form) if name in offered)
    changed = Subscriber(
        kind="webhook",
        address=subscriber.address,
        components=components,
        since=runtime.clock(),
        source=subscriber.source,
        secret=secret,
    )
    await runtime.store.save_subscribers([changed])
    rotated = action == "rotate"
    return await _manage_view(
        request, changed, done="rotated" if rotated else "saved", secret=secret if rotated else ""
    )
