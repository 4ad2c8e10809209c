"""Is a chat command really from our Slack app or our Mattermost command? Checked on the raw body before
anything in it is parsed.

Slack signs each request (https://api.slack.com/authentication/verifying-requests-from-slack): the header
X-Slack-Signature is `v0=` and the hex HMAC-SHA256, under the app's signing secret, of `v0:{timestamp}:{raw
body}`, the timestamp being X-Slack-Request-Timestamp. A request older (or newer) than five minutes is
refused, and so is a signature seen before within that window: Slack never sends a slash command twice, so a
repeat is someone replaying it. Mattermost sends the slash command's token, in the body's `token` field (and,
from Mattermost 5.x on, as `Authorization: Token ...`)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Final

SLACK_WINDOW: Final = 300.0
"""Seconds a Slack request's timestamp may be from now, either way (Slack's own recommendation)."""
SEEN_SIGNATURES_KEPT: Final = 10_000
"""Signatures remembered for refusing replays at most (a busy workspace sends a few a minute)."""


class Unverified(Exception):
    """The request is not from the configured app; the message says why, and carries no secret."""


class SlackVerifier:
    def __init__(self, signing_secret: str, *, clock: Callable[[], float]) -> None:
        self._key = signing_secret.encode()
        self._clock = clock
        self._seen: dict[str, float] = {}
        """Signatures received, each until the time its request stops being accepted."""

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raises Unverified unless `body` is signed with the secret, recently, for the first time."""
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if not timestamp or not signature:
            raise Unverified("not signed: X-Slack-Signature and X-Slack-Request-Timestamp are required")
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            raise Unverified("X-Slack-Request-Timestamp is not a Unix time")
        now = self._clock()
        if abs(now - int(timestamp)) > SLACK_WINDOW:
            raise Unverified("the request's timestamp is more than 5 minutes from now (a replay, or a clock off)")
        expected = "v0=" + hmac.new(self._key, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        # Compared as bytes: compare_digest raises on a str that is not ASCII (a 500 for a forged header).
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogatepass")):
            raise Unverified("the signature does not match: not signed with this app's signing secret")
        self._forget_before(now)
        if signature in self._seen:
            raise Unverified("this request was received before (a replay)")
        # Remembered for as long as the request could be accepted: its timestamp may be up to the window
        # ahead of this clock.
        self._seen[signature] = max(now, int(timestamp)) + SLACK_WINDOW
        while len(self._seen) > SEEN_SIGNATURES_KEPT:
            del self._seen[next(iter(self._seen))]

    def _forget_before(self, now: float) -> None:
        """Forget the signatures whose requests can no longer be accepted anyway."""
        self._seen = {signature: until for signature, until in self._seen.items() if until > now}


def verify_mattermost_header(expected_token: str, headers: Mapping[str, str]) -> bool:
    """True when `Authorization: Token ...` carries the slash command's token; False when there is no such
    header (the token is then in the body); Unverified when it carries another."""
    scheme, _, given = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "token" or not given.strip():
        return False
    _compare(expected_token, given.strip())
    return True


def verify_mattermost(expected_token: str, form: Mapping[str, str]) -> None:
    """Raises Unverified unless the form's `token` field is the slash command's token."""
    presented = form.get("token", "")
    if not presented:
        raise Unverified("no token: the Mattermost slash command's token is required")
    _compare(expected_token, presented)


def _compare(expected_token: str, presented: str) -> None:
    if not hmac.compare_digest(expected_token.encode(), presented.encode("utf-8", "surrogatepass")):
        raise Unverified("the token does not match this service's Mattermost slash command token")
