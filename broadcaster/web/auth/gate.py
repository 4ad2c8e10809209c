"""The gate every request passes: who is calling (an API token's name, or a signed-in user) and whether a
form post carries its CSRF token. Sessions and login links are signed, so any instance sharing the signing key
accepts them; what must be refused though its signature holds (a logged-out session, a login link already
used) is kept in the journal, which every instance shares."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from broadcaster.domain.errors import StoreError
from broadcaster.store import Store
from broadcaster.web.auth.clients import client_address, limit_key
from broadcaster.web.auth.limits import LoginLimits
from broadcaster.web.auth.passwords import PasswordChecks
from broadcaster.web.auth.signing import Signer
from config import Settings

log = logging.getLogger("broadcaster.web")

SESSION_COOKIE: Final = "broadcaster_session"
LOGIN_COOKIE: Final = "broadcaster_login"
DEVICE_COOKIE: Final = "broadcaster_device"
DEVICE_LIFETIME: Final = 90 * 24 * 3600.0
"""Seconds a browser stays known (broadcaster.web.auth.limits) after it last signed in."""
LOGIN_FORM_LIFETIME: Final = 3600.0
"""Seconds a login form may wait before it is sent."""
SESSION_LIFETIME: Final = 12 * 3600.0
LOGIN_LINK_LIFETIME: Final = 15 * 60.0
LOGIN_LINK: Final = "login-link"
"""The purpose login links are signed and redeemed under."""
LINK_USER: Final = "(login link)"
"""Who a single-use login link signs in as (when no user is configured yet): a name `broadcaster user add`
refuses, so no configured user can be mistaken for it."""
PASSWORD_FINGERPRINT_CHARS: Final = 12
STAMP_CHARS: Final = 22
"""Of a stamp's base64 signature: 132 bits."""


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    id: str
    """Random, per sign-in: what the session's CSRF tokens are bound to, and what logging out revokes."""


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    user: str | None
    """Who signed in, or None."""
    retry_after: float = 0.0
    """Seconds to wait before trying again, when refused for too many failures."""


class Gate:
    def __init__(self, settings: Settings, key: bytes, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self._tokens = settings.auth.named_api_tokens()
        self._users = {name: stored.get_secret_value() for name, stored in settings.auth.users.items()}
        self._trusted = list(settings.service.trusted_proxies)
        self._secure = settings.service.public_url.startswith("https://")
        self._signer = Signer(key, clock=clock)
        self._clock = clock
        self._store = store
        self._journal_unread = False
        """The last session check could not read the journal (logged once, when it starts and when it ends)."""
        self._limits = LoginLimits()
        self._password_checks = PasswordChecks()
        # A session carries a keyed fingerprint of its user's password hash: a new password (a new hash in
        # the configuration) ends every session signed in with the old one, on every instance.
        self._fingerprints = {
            name: self._signer.mac("password", stored)[:PASSWORD_FINGERPRINT_CHARS]
            for name, stored in self._users.items()
        }

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
        # surrogatepass: a header that was not valid UTF-8 still encodes (and matches nothing), never raises.
        presented = given.strip().encode("utf-8", "surrogatepass")
        found = None
        for name, token in self._tokens.items():
            if hmac.compare_digest(token.encode(), presented):
                found = name
        return found

    # --- people: sessions

    async def session(self, request: web.Request) -> Session | None:
        """The request's session: signed, unexpired, its user's password unchanged since it began, and not
        logged out on any instance."""
        session = self._signed_session(request)
        if session is None or await self._logged_out(session):
            return None
        return session

    def _signed_session(self, request: web.Request) -> Session | None:
        payload = self._signer.verify("session", request.cookies.get(SESSION_COOKIE, ""))
        if payload is None:
            return None
        parts = payload.split("~")
        if len(parts) != 3:
            return None
        encoded_user, session_id, fingerprint = parts
        try:
            user = base64.urlsafe_b64decode(encoded_user + "=" * (-len(encoded_user) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not session_id:
            return None
        if user in self._fingerprints:  # and not removed from the configuration since, nor its password changed
            current = hmac.compare_digest(fingerprint.encode(), self._fingerprints[user].encode())
        else:  # a login link's session ends as soon as a user exists
            current = user == LINK_USER and not self._users
        return Session(user=user, id=session_id) if current else None

    def start_session(self, response: web.StreamResponse, user: str, request: web.Request) -> None:
        encoded_user = _encoded(user)
        fingerprint = self._fingerprints.get(user, "")
        payload = f"{encoded_user}~{secrets.token_urlsafe(16)}~{fingerprint}"
        cookie = self._signer.sign("session", payload, lifetime=SESSION_LIFETIME)
        self._set_cookie(response, request, SESSION_COOKIE, cookie, lifetime=SESSION_LIFETIME, path="/")

    async def end_session(self, response: web.StreamResponse, session: Session) -> None:
        """Log out: the browser forgets the cookie, and every instance refuses the session from now on, should
        a copy of the cookie be presented. A journal that cannot record it is logged, not shown: the browser
        is signed out all the same."""
        response.del_cookie(SESSION_COOKIE, path="/")
        try:
            await self._store.revoke_session(session.id, until=self._clock() + SESSION_LIFETIME)
        except StoreError as exc:
            log.error(
                "logging %s out: the journal could not record it (%s); a copy of that session's cookie is still "
                "accepted until it expires",
                session.user,
                exc,
            )

    async def _logged_out(self, session: Session) -> bool:
        try:
            revoked = await self._store.session_revoked(session.id, now=self._clock())
        except StoreError as exc:
            # The signature decides while the journal cannot be read: refusing every session would lock the
            # commanders out of the form exactly when an outage needs it. What gets through meanwhile is a
            # copy of a cookie whose session was logged out, and only until the journal answers again.
            if not self._journal_unread:
                log.warning("sessions are checked by their signature alone: the journal cannot be read (%s)", exc)
            self._journal_unread = True
            return False
        if self._journal_unread:
            log.warning("sessions are checked against the journal again")
        self._journal_unread = False
        return revoked

    def stamp(self, purpose: str, value: str) -> str:
        """A signature of `value` for `purpose`, for a link whose claim must not be forged (the ledger's
        "already posted" notice)."""
        return self._signer.mac(purpose, value)[:STAMP_CHARS]

    def stamped(self, purpose: str, value: str, stamp: str) -> bool:
        return stamp.isascii() and hmac.compare_digest(self.stamp(purpose, value).encode(), stamp.encode())

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
        self._set_cookie(response, request, LOGIN_COOKIE, nonce, lifetime=LOGIN_FORM_LIFETIME, path="/login")
        return self._signer.sign("login-form", nonce, lifetime=LOGIN_FORM_LIFETIME)

    def login_form_ok(self, request: web.Request, token: str) -> bool:
        """The posted login form's token matches this browser's pre-session cookie, and has not expired."""
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        return bool(nonce) and self._signer.verify("login-form", token) == nonce

    @staticmethod
    def end_login(response: web.StreamResponse) -> None:
        response.del_cookie(LOGIN_COOKIE, path="/login")

    async def log_in(self, request: web.Request, user: str, password: str) -> LoginAttempt:
        """Check a password, within the login limits (broadcaster.web.auth.limits)."""
        client = limit_key(client_address(request, self._trusted))
        wait = self._limits.blocked_for(user, client, known_device=self._known_device(request, user))
        if wait > 0:
            return LoginAttempt(None, retry_after=wait)
        # Counted as a failure before the check, which waits on a thread: attempts arriving meanwhile see it
        # (else a burst would all pass the limits before the first failure was recorded). Undone if it passes.
        self._limits.failed(user, client)
        if not await self._password_checks.matches(self._users.get(user), password):
            return LoginAttempt(None)
        self._limits.succeeded(user, client)
        return LoginAttempt(user)

    def remember_device(self, response: web.StreamResponse, user: str, request: web.Request) -> None:
        """Mark the browser as one that signed in as `user`: the per-user login limits spare it (a guesser
        with many addresses cannot lock the commander's own browser out)."""
        device = self._signer.sign("device", _encoded(user), lifetime=DEVICE_LIFETIME)
        self._set_cookie(response, request, DEVICE_COOKIE, device, lifetime=DEVICE_LIFETIME, path="/login")

    def _set_cookie(
        self, response: web.StreamResponse, request: web.Request, name: str, value: str, *, lifetime: float, path: str
    ) -> None:
        """Every cookie the gate sets: never read by scripts, never sent from another site's page, and only over
        TLS when the service is reached over it."""
        secure = self._secure or request.secure
        response.set_cookie(
            name, value, max_age=int(lifetime), httponly=True, samesite="Strict", secure=secure, path=path
        )

    def _known_device(self, request: web.Request, user: str) -> bool:
        return self._signer.verify("device", request.cookies.get(DEVICE_COOKIE, "")) == _encoded(user)

    def login_link_token(self) -> str:
        """A single-use login link's token: a random nonce, signed, valid for LOGIN_LINK_LIFETIME."""
        return self._signer.sign(LOGIN_LINK, secrets.token_urlsafe(16), lifetime=LOGIN_LINK_LIFETIME)

    async def redeem_login_link(self, token: str) -> bool:
        """True the first time a valid, unexpired link is presented, on any instance sharing the signing key
        and the journal, while no user exists; never again. Raises StoreError when the journal cannot say: the
        link is then refused (it may or may not be spent)."""
        if self._users:
            return False
        nonce = self._signer.verify(LOGIN_LINK, token)
        if nonce is None:  # checked first: a forged link costs no journal write
            return False
        now = self._clock()
        return await self._store.redeem_once(LOGIN_LINK, nonce, now=now, until=now + LOGIN_LINK_LIFETIME)


def _encoded(user: str) -> str:
    """A user name as signed payloads carry it: any name, in the signer's alphabet (base64url, unpadded)."""
    return base64.urlsafe_b64encode(user.encode()).rstrip(b"=").decode()
