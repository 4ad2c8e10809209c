"""Customers subscribe themselves to status email: `GET/POST /subscribe`, the confirmation link, and the
page every update email links to for choosing components or unsubscribing.

Double opt-in without keeping anything for a request nobody confirmed: the confirmation link carries the
address and the components chosen, signed and valid for a day (domain.signed_links); only opening it and
pressing the button (a mail scanner that fetches links presses nothing) puts the subscriber in the journal.
The link also carries the subscription's generation (common.generation), so it works once and cannot
revive a subscription ended since. The page answers the same whether or not the address is subscribed
already (the email differs), so it tells nobody who subscribes. A hidden field that people leave empty
catches form-filling robots, and requests are limited per address and per client. Links point to
[service] public_url, so a forged Host header can never make the service mail a link elsewhere; without
it, subscribing is not offered."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Final

from aiohttp import web

from broadcaster.domain.signed_links import seal
from broadcaster.domain.subscriptions import CONFIRM_PURPOSE, MANAGE_PATH, MANAGE_PURPOSE, Subscriber
from broadcaster.runtime import Runtime
from broadcaster.web.forms import text_field
from broadcaster.web.keys import RUNTIME
from broadcaster.web.subscriptions import notes
from broadcaster.web.subscriptions.common import (
    HONEYPOT,
    SUBSCRIPTIONS,
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
from channels.base import DeliveryError
from config.email import is_address

log = logging.getLogger("broadcaster.web")

PATH: Final = "/subscribe"
CONFIRM_PATH: Final = "/subscribe/confirm"


def install(app: web.Application) -> None:
    app.router.add_get(PATH, subscribe_page)
    app.router.add_post(PATH, subscribe)
    app.router.add_get(CONFIRM_PATH, confirm_page)
    app.router.add_post(CONFIRM_PATH, confirm)
    app.router.add_get(MANAGE_PATH, manage_page)
    app.router.add_post(MANAGE_PATH, manage)


async def subscribe_page(request: web.Request) -> web.Response:
    subscriptions = request.app[SUBSCRIPTIONS]
    if subscriptions.mailer is None and subscriptions.webhooks is None:
        return page(request, "off", status=404)
    return page(request, "form", components=await known_components(request.app[RUNTIME]))


async def subscribe(request: web.Request) -> web.Response:
    subscriptions, runtime = request.app[SUBSCRIPTIONS], request.app[RUNTIME]
    mailer = subscriptions.mailer
    if mailer is None:
        return page(request, "off", status=404)
    form = await request.post()
    if text_field(form, HONEYPOT):
        return page(request, "sent")  # a robot: answered as anyone, mailed nothing
    offered = await known_components(runtime)
    address = text_field(form, "email").strip()
    chosen = posted_components(form)
    problem = _address_problem(address) or component_problem(chosen, offered)
    mail = None
    if not problem:
        busy = too_many_requests(request, addresses=[address.lower()])
        if busy is not None:
            return busy
        mail = await _what_to_mail(runtime, subscriptions.secret, address.lower(), chosen)
        problem = "" if mail is not None else "Choose fewer components (or none, to follow them all)."
    if mail is None:
        return page(request, "form", status=400, problem=problem, components=offered, email=address)
    subject, text = mail
    try:
        await mailer.send_note(address.lower(), subject, text)
    except DeliveryError:  # the relay's reply may quote the address: the log gets no detail
        log.warning("a subscription's confirmation could not be mailed; the relay refused it or is unreachable")
        return page(request, "unsent", status=503)
    return page(request, "sent")


def _address_problem(address: str) -> str:
    return "" if is_address(address) else "Give an email address such as name@example.com."


async def _what_to_mail(runtime: Runtime, secret: bytes, address: str, chosen: Sequence[str]) -> tuple[str, str] | None:
    """The confirmation, or (to an address subscribed and not unsubscribed since) its manage link; None when
    the components chosen would not fit in a link."""
    settings = runtime.settings
    site = settings.mirror.page_title
    subscribed = await runtime.store.subscriber("email", address) is not None
    if subscribed and not await runtime.store.is_suppressed(address):
        return notes.already_subscribed(site=site, manage_link=manage_link(runtime, secret, address))
    claims = {"email": address, "components": list(chosen), "generation": await generation(runtime, "email", address)}
    until = runtime.clock() + notes.CONFIRM_WINDOW_HOURS * 3600
    try:
        token = seal(secret, CONFIRM_PURPOSE, claims, until=until)
    except ValueError:
        return None
    link = f"{settings.service.public_url}{CONFIRM_PATH}?token={token}"
    return notes.confirmation(site=site, link=link, components=chosen)


def manage_link(runtime: Runtime, secret: bytes, address: str) -> str:
    token = seal(secret, MANAGE_PURPOSE, {"email": address}, until=None)
    return f"{runtime.settings.service.public_url}{MANAGE_PATH}?token={token}"


async def confirm_page(request: web.Request) -> web.Response:
    token = request.query.get("token", "")
    claims = token_claims(request, CONFIRM_PURPOSE, token)
    if isinstance(claims, web.Response):
        return claims
    if claims.generation != await generation(request.app[RUNTIME], "email", claims.email):
        return stale(request)
    return page(request, "confirm", email=claims.email, chosen=claims.components, token=token)


async def confirm(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    form = await request.post()
    claims = token_claims(request, CONFIRM_PURPOSE, text_field(form, "token"))
    if isinstance(claims, web.Response):
        return claims
    address = claims.email
    if claims.generation != await generation(runtime, "email", address):
        return stale(request)
    subscriber = Subscriber(kind="email", address=address, components=claims.components, since=runtime.clock())
    await runtime.store.save_subscribers([subscriber])
    await runtime.store.unsuppress(address)  # confirming is asking again, after any earlier unsubscribe
    log.info("an address confirmed its subscription")  # the address is personal data: the journal has it
    link = manage_link(runtime, request.app[SUBSCRIPTIONS].secret, address)
    return page(request, "subscribed", email=address, chosen=subscriber.components, manage=link)


async def manage_page(request: web.Request) -> web.Response:
    claims = token_claims(request, MANAGE_PURPOSE, request.query.get("token", ""))
    if isinstance(claims, web.Response):
        return claims
    return await _manage_view(request, claims.email, request.query["token"])


async def _manage_view(request: web.Request, address: str, token: str, *, done: str = "") -> web.Response:
    """A subscriber's page: components and Unsubscribe; only Unsubscribe for an address on the operator's
    list; "gets no status emails" once unsubscribed (a hard bounce or a one-click unsubscribe too)."""
    runtime = request.app[RUNTIME]
    subscriber = await runtime.store.subscriber("email", address)
    offered = await known_components(runtime)
    return page(
        request,
        "manage",
        email=address,
        token=token,
        subscriber=subscriber,
        suppressed=await runtime.store.is_suppressed(address),
        components=offered,
        chosen=as_offered(offered, subscriber.followed) if subscriber else [],
        done=done,
    )


async def manage(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    form = await request.post()
    token = text_field(form, "token")
    claims = token_claims(request, MANAGE_PURPOSE, token)
    if isinstance(claims, web.Response):
        return claims
    address = claims.email
    if text_field(form, "action") == "unsubscribe":
        await runtime.store.remove_subscriber("email", address)
        await runtime.store.suppress({address: "unsubscribed (manage page)"}, source="manage", now=runtime.clock())
        log.info("an address unsubscribed (manage page)")
        return await _manage_view(request, address, token, done="unsubscribed")
    subscriber = await runtime.store.subscriber("email", address)
    if subscriber is None or await runtime.store.is_suppressed(address):
        return await _manage_view(request, address, token)  # nothing to save: the page says why
    offered = await known_components(runtime)
    chosen = tuple(name for name in posted_components(form) if name in offered)
    changed = Subscriber(
        kind="email", address=address, components=chosen, since=runtime.clock(), source=subscriber.source
    )
    await runtime.store.save_subscribers([changed])
    return await _manage_view(request, address, token, done="saved")
