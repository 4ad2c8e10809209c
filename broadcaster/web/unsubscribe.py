"""Unsubscribing from the status emails, from the link every message carries.

`GET /unsubscribe?email=&token=` shows a confirmation page whose button posts back; `POST /unsubscribe` is
both that button and RFC 8058's one-click unsubscribe, which a mail client sends to the List-Unsubscribe
URL (email and token in its query) with the body `List-Unsubscribe=One-Click`. Neither needs a session or
a CSRF token: the token itself, an HMAC of the address that only the email channel's key can make, is what
proves the request came from a message sent to that address. The address joins the journal's suppression
list, which every process's email channel reads before each fan-out, so no unsubscribe is lost however
many processes share the journal."""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web

from broadcaster.domain.unsubscribe import unsubscribe_token_matches
from broadcaster.web.forms import text_field
from broadcaster.web.keys import RUNTIME
from broadcaster.web.rendering import render
from config import Settings
from config.keys import stored_secret

log = logging.getLogger("broadcaster.web")

PATH: Final = "/unsubscribe"
MAX_ADDRESS: Final = 320
"""Characters of an address at most (RFC 5321: a 64-character local part, @, a 255-character domain)."""
MAX_TOKEN: Final = 100
"""A token is 43 base64url characters; anything much longer, or not ASCII, is not one."""
ONE_CLICK: Final = ("List-Unsubscribe", "One-Click")
"""RFC 8058's body, as a form field: what tells a mail client's POST from the confirmation page's."""


def link_secret(settings: Settings) -> bytes:
    """The key the email channel signs its links with (EmailChannel.create): [email] unsubscribe_secret,
    else the one generated once into the data directory, which every process sharing it reads."""
    configured = settings.email.unsubscribe_secret
    if configured is not None:
        return configured.get_secret_value().encode()
    return stored_secret(settings.service.data_dir, "unsubscribe")


LINK_SECRET: Final = web.AppKey("unsubscribe_link_secret", bytes)


def install(app: web.Application) -> None:
    """The unsubscribe routes, on an application that holds the runtime."""
    app[LINK_SECRET] = link_secret(app[RUNTIME].settings)
    app.router.add_get(PATH, confirmation_page)
    app.router.add_post(PATH, unsubscribe)


async def confirmation_page(request: web.Request) -> web.Response:
    address, token = request.query.get("email", ""), request.query.get("token", "")
    refusal = _refusal(request, address, token, one_click=False)
    if refusal is not None:
        return refusal
    return render("unsubscribe.html.j2", page="confirm", address=address, token=token)


async def unsubscribe(request: web.Request) -> web.Response:
    form = await request.post()
    one_click = form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    # One-click carries the address and token in the URL's query; the confirmation page in its form.
    address = text_field(form, "email") or request.query.get("email", "")
    token = text_field(form, "token") or request.query.get("token", "")
    refusal = _refusal(request, address, token, one_click=one_click)
    if refusal is not None:
        return refusal
    runtime = request.app[RUNTIME]
    how = "one-click" if one_click else "confirmation page"
    added = await runtime.store.suppress(
        {address.lower(): f"unsubscribed ({how})"}, source="unsubscribe", now=runtime.clock()
    )
    # The address itself is personal data; the journal holds it, the log need not.
    log.info("an address unsubscribed (%s)%s", how, "" if added else "; it was already suppressed")
    if one_click:
        return web.Response(text="Unsubscribed.\n")
    return render("unsubscribe.html.j2", page="done", address=address, token="")


def _refusal(request: web.Request, address: str, token: str, *, one_click: bool) -> web.Response | None:
    """400 without a usable address, 403 when the token is not the address's; None when both are good."""
    if not address:
        return _answer(one_click, 400, "missing", "The link has no address in it.")
    if len(address) > MAX_ADDRESS or not address.isprintable() or "@" not in address:
        return _answer(one_click, 400, "missing", "The link's address is not an email address.")
    secret = request.app[LINK_SECRET]
    if len(token) > MAX_TOKEN or not token.isascii() or not unsubscribe_token_matches(secret, address, token):
        return _answer(one_click, 403, "invalid", "This unsubscribe link is not valid.")
    return None


def _answer(one_click: bool, status: int, page: str, text: str) -> web.Response:
    if one_click:  # a mail client shows no page: a short body says enough
        return web.Response(status=status, text=f"{text}\n")
    return render("unsubscribe.html.j2", status=status, page=page, address="", token="", reason=text)
