"""The gate every request passes: who is calling (an API token's name, or a signed-in user) and whether a
form post carries its CSRF token."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from broadcaster.web.auth.clients import client_address
from broadcaster.web.auth.limits import FailureLimit
from broadcaster.web.auth.passwords import password_matches
from broadcaster.web.auth.signing import Signer
from config import Settings

SESSION_COOKIE: Final = "broadcaster_session"
LOGIN_COOKIE: Final = "broadcaster_login"
LOGIN_FORM_LIFETIME: Final = 3600.0
"""Seconds a login form may wait before it is sent."""
SESSION_LIFETIME: Final = 12 * 3600.0
LOGIN_LINK_LIFETIME: Final = 15 * 60.0
LINK_USER: Final = "login-link"
"""The user a single-use login link signs in as (when no user is configured yet)."""
LOGIN_FAILURES_PER_USER: Final = 5
LOGIN_FAILURES_PER_CLIENT: Final = 20
LOGIN_WINDOW: Final = 15 * 60.0


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    id: str
    """Random, per sign-in: what the session's CSRF tokens are bound to."""


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    user: str | None
    """Who signed in, or None."""
    retry_after: float = 0.0
    """Seconds to wait before trying again, when refused for too many failures."""


class Gate:
    def __init__(self, settings: Settings, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._tokens = settings.auth.named_api_tokens()
        self._users = {name: stored.get_secret_value() for name, stored in settings.auth.users.items()}
        self._trusted = list(settings.service.trusted_proxies)
        self._secure = settings.service.public_url.startswith("https://")
        self._signer = Signer(key, clock=clock)
        self._clock = clock
        self._per_user = FailureLimit(allowed=LOGIN_FAILURES_PER_USER, window=LOGIN_WINDOW)
        self._per_client = FailureLimit(allowed=LOGIN_FAILURES_PER_CLIENT, window=LOGIN_WINDOW)
        self._used_links: dict[str, float] = {}

    @property
    def has_users(self) -> bool:
        return bool(self._users)

    # --- scripts: bearer tokens

    def api_caller(self, request: web.Request) -> str | None:
        """The name of the API token the request carries (Authorization: Bearer ...), or None. Every token is
        compared, in constant time, so the time taken tells nothing about which one nearly matched."""
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return None
        found = None
        for name, token in self._tokens.items():
            if hmac.compare_digest(token.encode(), given.strip().encode()):
                found = name
        return found

    # --- people: sessions

    def session(self, request: web.Request) -> Session | None:
        payload = self._signer.verify("session", request.cookies.get(SESSION_COOKIE, ""))
        if payload is None:
            return None
        encoded_user, _, session_id = payload.partition("~")
        try:
            user = base64.urlsafe_b64decode(encoded_user + "=" * (-len(encoded_user) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        if user != LINK_USER and user not in self._users:  # removed from the configuration since
            return None
        return Session(user=user, id=session_id)

    def start_session(self, response: web.StreamResponse, user: str, request: web.Request) -> None:
        encoded_user = base64.urlsafe_b64encode(user.encode()).rstrip(b"=").decode()
        payload = f"{encoded_user}~{secrets.token_urlsafe(16)}"
        cookie = self._signer.sign("session", payload, lifetime=SESSION_LIFETIME)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=int(SESSION_LIFETIME),
            httponly=True,
            samesite="Strict",
            secure=self._secure or request.secure,
            path="/",
        )

    @staticmethod
    def end_session(response: web.StreamResponse) -> None:
        response.del_cookie(SESSION_COOKIE, path="/")

    def csrf_token(self, session: Session) -> str:
        return self._signer.sign("csrf", session.id, lifetime=SESSION_LIFETIME)

    def csrf_ok(self, session: Session, token: str) -> bool:
        return self._signer.verify("csrf", token) == session.id

    # --- signing in

    def start_login(self, response: web.StreamResponse, request: web.Request) -> str:
        """Set a pre-session cookie (a random nonce, SameSite=Strict) and return the login form's token, signed
        over that nonce. A login posted from another site carries neither (that is login CSRF: signing the
        victim's browser in as the attacker, so what they type lands in the attacker's account)."""
        nonce = secrets.token_urlsafe(16)
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=int(LOGIN_FORM_LIFETIME),
            httponly=True,
            samesite="Strict",
            secure=self._secure or request.secure,
            path="/login",
        )
        return self._signer.sign("login-form", nonce, lifetime=LOGIN_FORM_LIFETIME)

    def login_form_ok(self, request: web.Request, token: str) -> bool:
        """The posted login form's token matches this browser's pre-session cookie, and has not expired."""
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        return bool(nonce) and self._signer.verify("login-form", token) == nonce

    @staticmethod
    def end_login(response: web.StreamResponse) -> None:
        response.del_cookie(LOGIN_COOKIE, path="/login")

    def log_in(self, request: web.Request, user: str, password: str) -> LoginAttempt:
        """Check a password, within the per-user and per-client failure limits."""
        client = client_address(request, self._trusted)
        wait = max(self._per_user.blocked_for(user), self._per_client.blocked_for(client))
        if wait > 0:
            return LoginAttempt(None, retry_after=wait)
        if password_matches(self._users.get(user), password):
            self._per_user.succeeded(user)
            return LoginAttempt(user)
        self._per_user.failed(user)
        self._per_client.failed(client)
        return LoginAttempt(None)

    def login_link_token(self) -> str:
        """A single-use login link's token, valid for LOGIN_LINK_LIFETIME."""
        return self._signer.sign("login-link", secrets.token_urlsafe(16), lifetime=LOGIN_LINK_LIFETIME)

    def redeem_login_link(self, token: str) -> bool:
        """True the first time a valid, unexpired link's token is presented; never again."""
        nonce = self._signer.verify("login-link", token)
        now = self._clock()
        self._used_links = {used: until for used, until in self._used_links.items() if until > now}
        if nonce is None or nonce in self._used_links:
            return False
        self._used_links[nonce] = now + LOGIN_LINK_LIFETIME
        return True
