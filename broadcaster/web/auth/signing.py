"""Signed, expiring tokens: the form's session cookie, its CSRF tokens and single-use login links are all
`payload.expiry.signature`, HMAC-SHA256 under one key ([auth] session_secret, else made once into the data
directory), each kind under its own purpose so one can never stand in for another."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable


class Signer:
    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    def sign(self, purpose: str, payload: str, *, lifetime: float) -> str:
        """A token carrying `payload` (ASCII, no "." in it) for `purpose`, valid for `lifetime` seconds."""
        if "." in payload or not payload.isascii():
            raise ValueError("a signed payload must be ASCII without '.'")
        expiry = str(int(self._clock() + lifetime))
        return f"{payload}.{expiry}.{self.mac(purpose, payload, expiry)}"

    def verify(self, purpose: str, token: str) -> str | None:
        """The payload of a token signed for `purpose` and not expired, else None. Constant-time."""
        # Every token this signs is ASCII: anything else is forged. Refused before comparing, because
        # compare_digest raises TypeError on non-ASCII str (a 500 for whoever sends "é" in a cookie).
        if not token.isascii():
            return None
        payload, _, rest = token.partition(".")
        expiry, _, mac = rest.partition(".")
        if not (payload and expiry.isdigit() and mac):
            return None
        if not hmac.compare_digest(mac.encode(), self.mac(purpose, payload, expiry).encode()):
            return None
        return payload if int(expiry) > self._clock() else None

    def mac(self, purpose: str, *parts: str) -> str:
        """HMAC-SHA256 of `parts` for `purpose`, base64url without padding."""
        message = "\n".join((purpose, *parts)).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
