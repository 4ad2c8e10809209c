"""Links that carry their own proof: a confirmation link in a subscribe email, a link to manage one's
subscription. The link holds what it is for, what it is about and when it stops working, signed with a key
only this service has, so nothing need be stored for a request nobody confirmed, and a link cannot be
made for an address by anyone who does not receive that address's mail.

A token is `<payload>.<signature>`, both base64url without padding: the payload is compact JSON of the
claims plus "for" (the purpose) and "until" (epoch seconds, absent for a link that does not expire); the
signature is HMAC-SHA256 over the purpose and the payload, so a token made for one purpose is refused for
another."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final

MAX_TOKEN: Final = 6000
"""Characters of a token at most: a link's claims are an address or URL and at most a few dozen component
names; a link must also fit a request line (aiohttp reads up to 8190 characters)."""


class LinkRefused(ValueError):
    """The link is not one this service made for this purpose (forged, altered or cut)."""


class LinkExpired(LinkRefused):
    """The link was genuine but its time is over."""


def seal(secret: bytes, purpose: str, claims: Mapping[str, Any], *, until: float | None) -> str:
    """A token for `claims`; ValueError when it would be longer than MAX_TOKEN (no link could carry it)."""
    body = {**claims, "for": purpose} | ({} if until is None else {"until": int(until)})
    payload = _encode(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    token = f"{payload}.{_encode(_signature(secret, purpose, payload))}"
    if len(token) > MAX_TOKEN:
        raise ValueError(f"a link of {len(token)} characters is too long (at most {MAX_TOKEN})")
    return token


def unseal(secret: bytes, purpose: str, token: str, *, now: float) -> dict[str, Any]:
    """The claims of a genuine, current token made for `purpose`; LinkRefused or LinkExpired otherwise."""
    payload, dot, signature = token.partition(".")
    if not dot or len(token) > MAX_TOKEN or not token.isascii():
        raise LinkRefused("this link is not complete; copy the whole link from the email")
    try:
        given = _decode(signature)
    except (binascii.Error, ValueError):
        raise LinkRefused("this link is not complete; copy the whole link from the email") from None
    # The signature first: nothing a stranger made is parsed (a crafted payload could nest JSON deep).
    if not hmac.compare_digest(given, _signature(secret, purpose, payload)):
        raise LinkRefused("this link is not valid")
    try:
        body = json.loads(_decode(payload))
    except (binascii.Error, ValueError, RecursionError):
        raise LinkRefused("this link is not valid") from None
    if not isinstance(body, dict) or body.get("for") != purpose:
        raise LinkRefused("this link is not valid")
    until = body.pop("until", None)
    if until is not None and now > until:
        raise LinkExpired("this link has expired; ask for a new one")
    del body["for"]
    return body


def _signature(secret: bytes, purpose: str, payload: str) -> bytes:
    return hmac.new(secret, f"{purpose}.{payload}".encode(), hashlib.sha256).digest()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
