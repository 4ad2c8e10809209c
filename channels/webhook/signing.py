"""Standard Webhooks headers (https://www.standardwebhooks.com/): webhook-id, webhook-timestamp and
webhook-signature "v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}'>".

The id is derived from the delivery id, so every retry of one delivery carries the same id and a
receiver can drop duplicates; the timestamp is taken per attempt, so a retry is not refused as a replay."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

from config.webhook import signing_key

__all__ = ["Signer", "message_id", "sign", "signing_key", "standard_headers"]

MESSAGE_ID_PREFIX: Final = "msg_"


def message_id(delivery_id: str) -> str:
    """The webhook-id of a delivery: stable across its retries, unique across deliveries (one delivery is
    one update for one target). Delivery ids are base32, so the id never contains the '.' separator."""
    return MESSAGE_ID_PREFIX + delivery_id


class Signer:
    """Signs webhook messages with one secret. The keyed HMAC state is built once and copied for each
    message: OpenSSL 3's one-shot HMAC looks the algorithm up again on every call."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The webhook-signature value for `body` sent with `msg_id` at `timestamp` (epoch seconds)."""
        mac = self._keyed.copy()
        mac.update(b"%s.%d.%s" % (msg_id.encode(), timestamp, body))
        return "v1," + base64.b64encode(mac.digest()).decode()


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature value for one message, signed with `key`."""
    return Signer(key).sign(msg_id, timestamp, body)


def standard_headers(msg_id: str, timestamp: int, body: bytes, signer: Signer | None) -> dict[str, str]:
    """The three Standard Webhooks headers; without a signer, no signature header (the other two still
    let a receiver de-duplicate)."""
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if signer is not None:
        headers["webhook-signature"] = signer.sign(msg_id, timestamp, body)
    return headers
