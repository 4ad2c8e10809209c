"""[webhook]: signed Statuspage-compatible deliveries (or Slack/Discord/Teams incoming-webhook JSON)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from functools import cached_property
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from config.secrets import SecretUrl
from config.sections import Section

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
# Headers the channel writes itself: letting configuration override them would break the body's framing
# or the Standard Webhooks signature a receiver checks.
RESERVED_HEADERS: Final = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "connection",
        "transfer-encoding",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
_HEADER_NAME: Final = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
_HEADER_VALUE_FORBIDDEN: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: "whsec_<base64>" is base64-decoded (as the
    standardwebhooks libraries do); any other secret is used as its UTF-8 bytes, so a receiver verifies
    it with `Webhook(secret.encode())`. Raises ValueError for a whsec_ secret that is not base64."""
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        # The reference libraries accept unpadded base64; so do we.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("a whsec_ secret must be base64 after the prefix") from None
    if not key:
        raise ValueError("the whsec_ secret is empty")
    return key


class WebhookTarget(Section):
    """One receiver. `timeout` is in seconds (default 15, the Standard Webhooks recommendation's low end)."""

    url: Annotated[str, SecretUrl()]
    secret: SecretStr | None = Field(
        default=None,
        description='Standard Webhooks signing secret: "whsec_<base64>" (decoded) or any other text (used as '
        "UTF-8 bytes). Unset: deliveries are not signed.",
    )
    format: Literal["json", "slack", "discord", "teams"] = "json"
    name: str | None = Field(
        default=None,
        description="How the target appears in the ledger, logs and CLI. Default: the URL's host and a short "
        "hash of the whole URL, because incoming-webhook URLs (Slack, Discord) carry their secret in the path.",
    )
    headers: dict[str, SecretStr] = Field(
        default={},
        description="Extra request headers, e.g. Authorization. Values are secrets: masked in `broadcaster "
        "config` and scrubbed from errors.",
    )
    timeout: Annotated[float, Field(gt=0, le=300)] = Field(
        default=15.0, description="Seconds for one request, connection included."
    )
    ping: bool = Field(
        default=False,
        description="`broadcaster check` sends this target a signed ping event (a chat target shows it as a "
        "message). Otherwise the check only opens a TCP (and TLS) connection, sending nothing.",
    )

    @cached_property  # computed once: the registry asks for every target's name on each accepted update
    def label(self) -> str:
        """The target's ledger name: `name`, else the URL's host and a short hash of the whole URL."""
        if self.name:
            return self.name
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:8]
        return f"{urlsplit(self.url).hostname}#{digest}"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        parts = urlsplit(value)
        if not parts.hostname:
            raise ValueError("has no host name")
        _ = parts.port  # raises ValueError for a port that is not a number in 0-65535
        return value

    @field_validator("secret")
    @classmethod
    def _usable_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            if not value.get_secret_value():
                raise ValueError("is empty; leave it out to send unsigned deliveries")
            signing_key(value.get_secret_value())
        return value

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        seen: set[str] = set()
        for name, header_value in value.items():
            lowered = name.lower()
            if not _HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if lowered in RESERVED_HEADERS:
                raise ValueError(f"{name!r} is set by the broadcaster itself")
            if lowered in seen:
                raise ValueError(f"{name!r} is given twice")
            if _HEADER_VALUE_FORBIDDEN.search(header_value.get_secret_value()):
                raise ValueError(f"the value of {name!r} contains a line break or control character")
            seen.add(lowered)
        return value


SUBSCRIBERS_TARGET: Final = "subscribers"
"""The one delivery target that stands for every confirmed subscriber endpoint (as email's does for every
subscriber)."""


class WebhookSettings(Section):
    enabled: bool = False
    targets: list[WebhookTarget] = Field(default=[])
    subscribers: bool = Field(
        default=False,
        description="Offer webhook subscriptions on /subscribe (needs [service] public_url): customers register "
        "an endpoint, confirm it with the code its signed ping carries, and receive every update they follow.",
    )
    allow_private_subscriber_urls: bool = Field(
        default=False,
        description="Let subscribers register endpoints on loopback, private or link-local addresses. For "
        "testing only: otherwise anyone could make this service call into its own network.",
    )

    @model_validator(mode="after")
    def _targets_when_enabled(self) -> WebhookSettings:
        if self.enabled and not self.targets and not self.subscribers:
            raise ValueError("enabled = true requires at least one [[webhook.targets]] (or subscribers = true)")
        if any(target.label == SUBSCRIBERS_TARGET for target in self.targets):
            raise ValueError(f"a target may not be named {SUBSCRIBERS_TARGET!r}: it stands for the subscribers")
        labels = [target.label for target in self.targets]
        if len(set(labels)) != len(labels):
            raise ValueError("two targets have the same name (or the same URL)")
        return self

    def target_names(self) -> list[str]:
        """The targets' ledger names, stable across restarts and free of secrets; "subscribers" for the
        subscribed endpoints when they are offered."""
        return [target.label for target in self.targets] + ([SUBSCRIBERS_TARGET] if self.subscribers else [])
