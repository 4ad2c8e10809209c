"""Signing in and out: the login form (a user from [auth] users and their password), single-use login links
(printed by `serve` on a fresh machine, before any user exists), and logging out.

Login CSRF is refused with a pre-session cookie: GET /login sets a random nonce in a SameSite=Strict cookie
and signs it into the form; POST /login wants both. A form posted from another site arrives without the
cookie, so nobody can sign a browser in under their own account."""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Sequence
from typing import Final

from aiohttp import web

from broadcaster.domain.errors import StoreError
from broadcaster.web.auth.gate import LINK_USER, LOGIN_LINK_LIFETIME, Gate
from broadcaster.web.keys import GATE
from broadcaster.web.pages.access import HOME, csrf_refused, posted_form, refused, safe_next, see_other, signed_in
from broadcaster.web.rendering import page_html

MAX_USER_NAME: Final = 64

log = logging.getLogger("broadcaster.web")


async def login_page(request: web.Request) -> web.StreamResponse:
    target = safe_next(request.query.get("next"))
    if await request.app[GATE].session(request) is not None:
        return see_other(target)
    return _login_form(request, target=target)


async def log_in(request: web.Request) -> web.StreamResponse:
    gate = request.app[GATE]
    posted = await request.post()
    user = _text(posted.get("user"))[:MAX_USER_NAME]
    password = _text(posted.get("password"))
    target = safe_next(_text(posted.get("next")))
    if not gate.login_form_ok(request, _text(posted.get("login_token"))):
        problem = "This sign-in form expired or was not opened on this site. Sign in again."
        return _login_form(request, target=target, user=user, problem=problem, status=403)
    attempt = await gate.log_in(request, user, password)
    if attempt.retry_after > 0:
        minutes = math.ceil(attempt.retry_after / 60)
        problem = f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        response = _login_form(request, target=target, user=user, problem=problem, status=429)
        response.headers["Retry-After"] = str(math.ceil(attempt.retry_after))
        return response
    if attempt.user is None:
        problem = "Wrong user name or password."
        return _login_form(request, target=target, user=user, problem=problem, status=403)
    response = see_other(target)
    gate.start_session(response, attempt.user, request)
    gate.remember_device(response, attempt.user, request)
    gate.end_login(response)
    return response


async def log_out(request: web.Request) -> web.StreamResponse:
    session = await signed_in(request)
    if await posted_form(request, session) is None:
        return await csrf_refused(request)
    response = see_other("/login")
    await request.app[GATE].end_session(response, session)
    return response


async def login_link(request: web.Request) -> web.StreamResponse:
    """A single-use link signs the browser in (as LINK_USER) and goes to the form, on whichever instance it is
    opened; a used, expired or forged one (or one opened once users exist) says so."""
    gate = request.app[GATE]
    try:
        redeemed = await gate.redeem_login_link(request.query.get("token", ""))
    except StoreError as exc:
        log.error("a login link could not be checked: the journal cannot be written (%s)", exc)
        return await refused(
            503,
            "This login link could not be checked",
            "The journal, which records that a link was used, cannot be reached. Try the link again shortly.",
            request=request,
        )
    if not redeemed:
        return await refused(
            403,
            "This login link has expired or was already used",
            f"A login link works once, within {int(LOGIN_LINK_LIFETIME // 60)} minutes, and only until a user "
            "exists. Restart `broadcaster serve` on a terminal for a new one, or sign in as a user made with "
            "`broadcaster user add NAME`.",
            request=request,
        )
    response = see_other(HOME)
    gate.start_session(response, LINK_USER, request)
    return response


def _login_form(
    request: web.Request, *, target: str, user: str = "", problem: str = "", status: int = 200
) -> web.Response:
    response = web.Response(status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    token = request.app[GATE].start_login(response, request)
    response.text = page_html("login.html.j2", next=target, user_name=user, problem=problem, login_token=token)
    return response


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def login_instructions(gate: Gate, address: Sequence[object], *, on_terminal: bool) -> list[str]:
    """What `serve` prints about signing in to the form, given the address it is bound to. With no user yet,
    a single-use login link when a person is at a terminal on this machine (loopback: nobody else can
    reach it); otherwise how to make a user. Nothing once users exist."""
    if gate.has_users:
        return []
    host, port = str(address[0]), int(str(address[1]))
    if on_terminal and _is_loopback(host):
        shown_host = f"[{host}]" if ":" in host else host
        link = f"http://{shown_host}:{port}/login/link?token={gate.login_link_token()}"
        minutes = int(LOGIN_LINK_LIFETIME // 60)
        return [
            f"broadcaster: no user yet; open the commander form with this link (works once, for {minutes} minutes):",
            f"  {link}",
            "broadcaster: to sign in later, make a user: broadcaster user add NAME",
        ]
    return [
        "broadcaster: no user can sign in to the form yet: run `broadcaster user add NAME` and put the line "
        "it prints under [auth.users]",
    ]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
