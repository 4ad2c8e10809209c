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
        """A token carrying `payload` (no "." in it) for `purpose`, valid for `lifetime` seconds."""
        if "." in payload:
            raise ValueError("a signed payload cannot contain '.'")
        expiry = str(int(self._clock() + lifetime))
        return f"{payload}.{expiry}.{self._mac(purpose, payload, expiry)}"

    def verify(self, purpose: str, token: str) -> str | None:
        """The payload of a token signed for `purpose` and not expired, else None. Constant-time."""
        payload, _, rest = token.partition(".")
        expiry, _, mac = rest.partition(".")
        if not (payload and expiry.isdigit() and mac):
            return None
        if not hmac.compare_digest(mac, self._mac(purpose, payload, expiry)):
            return None
        return payload if int(expiry) > self._clock() else None

    def _mac(self, purpose: str, payload: str, expiry: str) -> str:
        message = f"{purpose}\n{payload}\n{expiry}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
