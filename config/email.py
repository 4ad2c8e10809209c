"""[email]: subscriber email over SMTP, through a primary relay and optional fallback relays."""

from __future__ import annotations

import re
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from config.secrets import plain_credentials
from config.sections import Section

Security = Literal["starttls", "tls", "none"]

# A deliberately plain address syntax: ASCII dot-atoms only (no quoted local parts, no IP literals, no
# SMTPUTF8), which is what every mailbox provider accepts and what cannot smuggle anything into a header.
_ATOM: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL: Final = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS: Final = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$")
MAX_ADDRESS: Final = 254
MAX_LOCAL_PART: Final = 64


def is_address(text: str) -> bool:
    """True for a plain ASCII mailbox address such as "ops@example.com" (no display name)."""
    return len(text) <= MAX_ADDRESS and bool(ADDRESS.match(text)) and len(text.partition("@")[0]) <= MAX_LOCAL_PART


class RelaySettings(Section):
    """One SMTP relay. security: "starttls" (upgrade a plain connection; a relay that does not offer it is
    refused, never used in clear), "tls" (TLS from the first byte, usually port 465) or "none" (plain SMTP,
    for a relay on this host or a private network; credentials are then refused)."""

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Security = "starttls"
    username: str | None = None
    password: SecretStr | None = None

    @property
    def label(self) -> str:
        """How the relay appears in check results and logs: "host:port"."""
        return f"{self.host}:{self.port}"

    @model_validator(mode="after")
    def _credentials_are_safe(self) -> RelaySettings:
        _check_credentials(self.username, self.password, self.security)
        return self


class EmailSettings(Section):
    """The design's keys (enabled ... unsubscribe_url) describe the primary relay and the list; the rest
    tune delivery. All times are in seconds."""

    enabled: bool = False
    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Security = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str = ""
    subscribers_file: Path | None = Field(
        default=None,
        description="The operator's own list (one address per line, or CSV with email and components "
        "columns). Optional: people who subscribe themselves are kept in the journal.",
    )
    unsubscribe_url: str = Field(
        default="",
        description="HTTPS endpoint for one-click unsubscribe (RFC 8058). Each message gets "
        "List-Unsubscribe: <URL?email=ADDRESS[&token=HMAC]>. Empty: no List-Unsubscribe header.",
    )
    unsubscribe_secret: SecretStr | None = Field(
        default=None,
        description="When set, List-Unsubscribe URLs carry token = base64url(HMAC-SHA256(secret, lower-cased "
        "address)) so the endpoint can tell a subscriber's own click from a forged one.",
    )
    fallback_relays: list[RelaySettings] = Field(
        default=[],
        description="Tried in order when the primary refuses connections, is unreachable, or refuses us at "
        "connect, EHLO, STARTTLS or AUTH.",
    )
    pool_size: Annotated[int, Field(ge=1, le=100)] = Field(
        default=8, description="SMTP connections kept open and used at once, shared by every delivery."
    )
    connect_timeout: Annotated[float, Field(gt=0)] = Field(
        default=15.0, description="Seconds to connect, read the greeting, EHLO, STARTTLS and AUTH."
    )
    command_timeout: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="Seconds to wait for the reply to one SMTP command (MAIL, RCPT, DATA...)."
    )
    idle_timeout: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="A pooled connection idle longer than this is closed instead of reused."
    )
    relay_cooldown: Annotated[float, Field(ge=0)] = Field(
        default=60.0,
        description="After a relay fails to connect, new connections try the other relays first for this long.",
    )
    helo_name: str = Field(default="", description="Name sent in EHLO. Empty: the domain of from_addr.")
    suppression_file: Path | None = Field(
        default=None,
        description="Addresses never mailed again (hard bounces, unsubscribes). Default: "
        "<service.data_dir>/email-suppressed.txt.",
    )
    max_subscribers: Annotated[int, Field(ge=1)] = Field(
        default=1_000_000, description="A subscribers file with more addresses than this is refused, not truncated."
    )

    @field_validator("from_addr")
    @classmethod
    def _from_addr_is_an_address(cls, value: str) -> str:
        value = value.strip()
        if value and not is_address(parseaddr(value)[1]):
            raise ValueError('must be an address such as "status@example.com" or "Status <status@example.com>"')
        if "\r" in value or "\n" in value:
            raise ValueError("must be a single line")
        return value

    @field_validator("unsubscribe_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith("https://"):
            raise ValueError("must start with https:// (RFC 8058 one-click unsubscribe requires HTTPS)")
        if len(value) > 500 or any(char.isspace() or char in '<>"' for char in value):
            raise ValueError("must be a URL of at most 500 characters without spaces, quotes or angle brackets")
        return value

    @field_validator("helo_name")
    @classmethod
    def _host_name(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", value):
            raise ValueError("must be a host name (letters, digits, dots and hyphens)")
        return value

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> EmailSettings:
        _check_credentials(self.username, self.password, self.security)
        if self.enabled and not self.from_addr:
            raise ValueError("enabled = true requires from_addr")
        return self

    @property
    def sender(self) -> str:
        """The bare envelope address of from_addr."""
        return parseaddr(self.from_addr)[1]

    @property
    def sender_domain(self) -> str:
        """The domain of from_addr, lower-cased: used for Message-IDs, List-Id and the default EHLO name."""
        return self.sender.rpartition("@")[2].lower()

    def relays(self) -> list[RelaySettings]:
        """The primary relay (the flat keys) followed by the fallback relays, in the order they are tried."""
        primary = RelaySettings(
            host=self.host, port=self.port, security=self.security, username=self.username, password=self.password
        )
        return [primary, *self.fallback_relays]

    def secret_forms(self) -> list[str]:
        """Each relay's AUTH PLAIN blob (config.secrets.HasSecretForms): a relay may quote it back."""
        return [
            plain_credentials(relay.username, relay.password.get_secret_value())
            for relay in self.relays()
            if relay.username is not None and relay.password is not None
        ]

    def suppression_path(self, data_dir: Path) -> Path:
        return self.suppression_file or data_dir / "email-suppressed.txt"


def _check_credentials(username: str | None, password: SecretStr | None, security: Security) -> None:
    if (username is None) != (password is None):
        raise ValueError("username and password go together: give both or neither")
    if username is not None and security == "none":
        raise ValueError(
            'username and password need security = "starttls" or "tls": credentials are never sent in clear'
        )
