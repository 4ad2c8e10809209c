"""Settings sections shared by the whole service (not tied to one channel)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)

from config.secrets import SecretUrl


class Section(BaseModel):
    """Base of every section: unknown keys are errors, because a misspelt key silently ignored is a
    setting that silently does not apply in the middle of an incident."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


def http_url(value: str) -> str:
    """An http(s) base URL without its trailing slash ("" stays "")."""
    value = value.strip()
    if value and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


BaseUrl = Annotated[str, AfterValidator(http_url)]


def split_host_port(value: str) -> tuple[str, int | None]:
    """ "host", "host:port", "[v6 address]:port" as (lower-cased host, port or None). ValueError otherwise: a
    scheme, a path, credentials, or a port out of range."""
    parts = urlsplit("//" + value.strip())
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535") from None
    if not parts.hostname or parts.path or parts.query or parts.fragment or "@" in parts.netloc or "/" in value:
        raise ValueError(f"{value!r} is not a host or host:port (no scheme, path or credentials)")
    return parts.hostname.lower(), port


def _host_port(value: str) -> str:
    host, port = split_host_port(value)
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


HostPort = Annotated[str, AfterValidator(_host_port)]
"""A host and optional port, as "host", "host:port" or "[::1]:port" (stored lower-cased)."""


class ServiceSettings(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    public_url: BaseUrl = Field(
        default="",
        description="Where this service answers (e.g. https://broadcaster.example.com): the form, the ledger "
        "and the unsubscribe links in emails (https:// for those, as RFC 8058 requires). Empty: emails carry no "
        "unsubscribe link of this service's own. The status site's own address is "
        "[mirror] public_url.",
    )
    data_dir: Path = Path("var")
    poll_interval: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=1.0,
        description="Seconds between looks at the journal for work another instance journaled. Processes of "
        "this host sharing a SQLite journal say so at once; this is the fallback.",
    )
    check_interval: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=3600.0,
        description="Seconds between the service's preflights (`broadcaster check`, run in the service): the "
        "results are on /readyz and /metrics, so a broken channel is seen before an incident needs it.",
    )
    lease: Annotated[float, Field(ge=3, le=3600)] = Field(
        default=60.0,
        description="Seconds a delivery stays leased to the process attempting it without news (it renews the "
        "lease every third of this while it works): how long another instance waits before taking over the "
        "work of one that died without a word.",
    )
    sweep_interval: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=15.0,
        description="Seconds between sweeps that take back leases that ran out and record expiries. A process of "
        "this host that dies is noticed at once; this is for the rest.",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default=[],
        description="Proxies (addresses or networks) whose X-Forwarded-For names the client: login rate "
        "limits count per client. Empty: the connection's own address is the client.",
    )


class StoreSettings(Section):
    url: Annotated[str, SecretUrl(path_is_secret=False)] = Field(
        default="",
        description='Journal location: "sqlite:///relative/path.db", "sqlite:////absolute/path.db" or '
        '"redis://host:6379/0". Empty: sqlite:///<service.data_dir>/broadcaster.db.',
    )
    replica: bool = Field(
        default=True,
        description="With a Redis journal: `serve` keeps a local copy (<service.data_dir>/replica.db) of what "
        "sending needs, and when Redis is out of reach accepts and sends from it, then hands everything back "
        "to Redis when it answers again. False: without Redis, intake answers 503.",
    )
    replica_refresh: Annotated[float, Field(ge=1, le=3600)] = Field(
        default=30.0,
        description="Seconds between refreshes of the local replica from Redis while it answers (it is also "
        "refreshed a few seconds after each change this instance hears of).",
    )


class AuthSettings(Section):
    api_tokens: list[SecretStr] | dict[str, SecretStr] = Field(
        default=[],
        description='Bearer tokens for the JSON API: a list, or a table naming each (name = "token"); an '
        "update posted with a token records the token's name as its author (token-1, token-2... for a list).",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="The Slack app's signing secret: POST /chatops/slack answers only requests signed with it. "
        "Unset: the Slack endpoint refuses everything.",
    )
    mattermost_token: SecretStr | None = Field(
        default=None,
        description="The Mattermost slash command's token: POST /chatops/mattermost answers only requests "
        "carrying it. Unset: the Mattermost endpoint refuses everything.",
    )
    slack_team_ids: list[str] = Field(default=[], description="Slack workspaces allowed; empty: any.")
    slack_channel_ids: list[str] = Field(default=[], description="Slack channels allowed; empty: any.")
    slack_user_ids: list[str] = Field(default=[], description="Slack users allowed; empty: any.")
    mattermost_team_ids: list[str] = Field(default=[], description="Mattermost teams allowed; empty: any.")
    mattermost_channel_ids: list[str] = Field(default=[], description="Mattermost channels allowed; empty: any.")
    mattermost_user_ids: list[str] = Field(default=[], description="Mattermost users allowed; empty: any.")
    users: dict[str, SecretStr] = Field(
        default={}, description="user name -> argon2 password hash (`broadcaster user add NAME` makes one)"
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="Signs the form's session cookies and login links. Unset: one is generated once into "
        "<data_dir>/session.key (so every instance sharing the data directory agrees).",
    )

    snapshot_tokens: list[str] = Field(
        default=[],
        description="Names of the api_tokens that may download the journal (GET /api/v1/snapshot, for "
        "`broadcaster kit --from URL`): it holds every subscriber's address and webhook secret. Empty: none.",
    )

    @model_validator(mode="after")
    def _snapshot_tokens_are_api_tokens(self) -> AuthSettings:
        names = self.named_api_tokens()
        unknown = [name for name in self.snapshot_tokens if name not in names]
        if unknown:
            known = ", ".join(names) or "none"
            raise ValueError(f"snapshot_tokens names {unknown[0]!r}, which is none of api_tokens' names ({known})")
        return self

    def named_api_tokens(self) -> dict[str, str]:
        """Every API token by its name, in clear."""
        if isinstance(self.api_tokens, dict):
            return {name: token.get_secret_value() for name, token in self.api_tokens.items()}
        return {f"token-{n}": token.get_secret_value() for n, token in enumerate(self.api_tokens, start=1)}


class ChatopsSettings(Section):
    mattermost_hosts: list[HostPort] = Field(
        default=[],
        description='Where a Mattermost response_url may point ("host", for the scheme\'s own port, or '
        '"host:port"): the delivery summary goes only there. Empty: no summary for Mattermost commands. '
        "Slack's goes only to hooks.slack.com over https.",
    )
    reminder_webhook: Annotated[str, SecretUrl()] = Field(
        default="",
        description="A Slack or Mattermost incoming-webhook URL for reminders of overdue next updates (a slash "
        "command's response_url takes only five messages in 30 minutes). Empty: reminders are only logged.",
    )
    summary_after: Annotated[float, Field(gt=0, le=1800)] = Field(
        default=60.0,
        description="Seconds a chat command waits for its deliveries to settle before posting the summary of "
        "what is known (earlier once every delivery is final).",
    )

    @field_validator("reminder_webhook")
    @classmethod
    def _http(cls, value: str) -> str:
        return http_url(value) if value else value


class NetworkSettings(Section):
    resolve: dict[str, str] = Field(
        default={},
        description='Pinned addresses, "host" = "ip:port" or "host:port" = "ip:port", used instead of DNS '
        "when DNS is part of the outage.",
    )
    ca_file: Path | None = None

    @field_validator("resolve")
    @classmethod
    def _addresses_have_ports(cls, value: dict[str, str]) -> dict[str, str]:
        for host, address in value.items():
            _ip, sep, port = address.rpartition(":")
            if not sep or not port.isdigit():
                raise ValueError(f'{host!r} = {address!r}: expected "ip:port"')
        return value


class RetryOverrides(Section):
    """One channel's lane policy. Every key is optional: unset keys take the channel's defaults
    (see config.settings.LANE_DEFAULTS). All times are in seconds."""

    max_attempts: Annotated[int, Field(ge=1, le=100)] | None = None
    base_delay: Annotated[float, Field(gt=0)] | None = None
    max_delay: Annotated[float, Field(gt=0)] | None = None
    ttl: Annotated[float, Field(gt=0)] | None = None
    timeout: Annotated[float, Field(gt=0)] | None = None
    concurrency: Annotated[int, Field(ge=1, le=1024)] | None = None
    breaker_threshold: Annotated[int, Field(ge=1)] | None = None
    breaker_cooldown: Annotated[float, Field(gt=0)] | None = None
