"""Settings sections shared by the whole service (not tied to one channel)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from config.secrets import SecretUrl


class Section(BaseModel):
    """Base of every section: unknown keys are errors, because a misspelt key silently ignored is a
    setting that silently does not apply in the middle of an incident."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class ServiceSettings(Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    public_url: str = Field(
        default="",
        description="Where the status mirror is served (e.g. https://status.example.com); used for links in "
        "emails, posts, feeds and shortlinks. Empty: pages link to each other relatively.",
    )
    data_dir: Path = Path("var")

    @field_validator("public_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class StoreSettings(Section):
    url: Annotated[str, SecretUrl(path_is_secret=False)] = Field(
        default="",
        description='Journal location: "sqlite:///relative/path.db", "sqlite:////absolute/path.db" or '
        '"redis://host:6379/0". Empty: sqlite:///<service.data_dir>/broadcaster.db.',
    )


class AuthSettings(Section):
    api_tokens: list[SecretStr] = []
    slack_signing_secret: SecretStr | None = None
    mattermost_token: SecretStr | None = None
    users: dict[str, SecretStr] = Field(default={}, description="user name -> argon2 password hash")


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
