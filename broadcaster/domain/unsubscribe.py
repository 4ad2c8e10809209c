"""The token of a one-click unsubscribe link: base64url(HMAC-SHA256(secret, lower-cased address)), without
padding. The email channel puts it in every message's link; the service checks it before unsubscribing
anyone, so nobody can unsubscribe an address that is not their own."""

from __future__ import annotations

import base64
import hashlib
import hmac


def unsubscribe_token(secret: bytes, address: str) -> str:
    digest = hmac.new(secret, address.lower().encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def unsubscribe_token_matches(secret: bytes, address: str, token: str) -> bool:
    """In constant time, so the comparison tells an attacker nothing about the right token."""
    return hmac.compare_digest(unsubscribe_token(secret, address).encode(), token.encode())
