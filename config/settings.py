"""The root settings model: every section, the environment prefix, and each lane's effective policy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Annotated, Any, Final

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from config.drill import DrillSettings
from config.email import EmailSettings
from config.mirror import MirrorSettings
from config.scrubber import Scrubber
from config.secrets import collect_secrets
from config.sections import (
    AuthSettings,
    ChatopsSettings,
    NetworkSettings,
    RetryOverrides,
    ServiceSettings,
    StoreSettings,
)
from config.templates import DEFAULT_TEMPLATES, TemplateText, with_defaults
from config.webhook import WebhookSettings
from config.x import XSettings

CHANNEL_NAMES: Final = ("email", "x", "webhook", "mirror")


@dataclass(frozen=True, slots=True)
class LanePolicy:
    """A lane's effective policy. All times in seconds.

    max_attempts: attempts before a delivery is recorded as failed.
    base_delay, max_delay: exponential backoff with full jitter, capped at max_delay.
    ttl: age after which an undelivered update is recorded as expired and never sent.
    timeout: limit on one attempt.
    concurrency: deliveries in flight at once on this lane.
    breaker_threshold, breaker_cooldown: consecutive transient failures that open a target's breaker,
        and how long it stays open before one probe is let through.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    ttl: float = 3600.0
    timeout: float = 30.0
    concurrency: int = 4
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0


# Why these differ: an email batch to thousands of subscribers takes minutes, X rate-limit windows are
# 15 minutes, webhooks are many small independent targets, and the mirror must converge on the truth even
# after a long storage outage (it renders the latest state, so a late render is never stale).
LANE_DEFAULTS: Final[dict[str, LanePolicy]] = {
    "email": LanePolicy(max_attempts=8, base_delay=5, max_delay=300, ttl=3600, timeout=900, concurrency=2),
    "x": LanePolicy(max_attempts=6, base_delay=5, max_delay=900, ttl=3600, timeout=30, concurrency=1),
    "webhook": LanePolicy(max_attempts=8, base_delay=2, max_delay=300, ttl=3600, timeout=30, concurrency=64),
    "mirror": LanePolicy(max_attempts=10, base_delay=0.5, max_delay=30, ttl=86400, timeout=60, concurrency=4),
}

# The parsed config file while one Settings() is being built (see file_values below).
_file_values: ContextVar[dict[str, Any] | None] = ContextVar("broadcaster_config_file_values", default=None)


class Settings(BaseSettings):
    """Everything the broadcaster can be told. Sources, strongest first: environment variables
    (BROADCASTER_<SECTION>__<KEY>), a .env file in the working directory, the TOML file, the defaults."""

    model_config = SettingsConfigDict(
        env_prefix="BROADCASTER_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        validate_default=True,
    )

    service: ServiceSettings = Field(default_factory=ServiceSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    chatops: ChatopsSettings = Field(default_factory=ChatopsSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    x: XSettings = Field(default_factory=XSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    mirror: MirrorSettings = Field(default_factory=MirrorSettings)
    drill: DrillSettings = Field(default_factory=DrillSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    retry: dict[str, RetryOverrides] = Field(default_factory=dict)
    templates: dict[Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,40}$")], TemplateText] = Field(
        default_factory=lambda: dict(DEFAULT_TEMPLATES),
        description='Message templates, NAME = "text", with {components} and {next_update}; one ships for '
        "each status, named after it. An empty text withdraws a shipped one.",
    )

    @field_validator("templates", mode="before")
    @classmethod
    def _shipped_templates_too(cls, value: Any) -> Any:
        return with_defaults(value)

    @model_validator(mode="after")
    def _public_url_moved(self) -> Settings:
        if self.service.public_url and not self.mirror.public_url:
            raise ValueError(
                "[service] public_url is now where this service answers (the form, the ledger, unsubscribe "
                "links); the status site's address, which it used to be, moved to [mirror] public_url: set "
                "that too (it may be the same URL)"
            )
        return self

    @property
    def unsubscribe_url(self) -> str:
        """Where the emails' unsubscribe links point: [email] unsubscribe_url, else this service's own
        /unsubscribe when [service] public_url says it answers over HTTPS (RFC 8058 one-click needs it),
        else none."""
        if self.email.unsubscribe_url:
            return self.email.unsubscribe_url
        service = self.service.public_url
        return f"{service}/unsubscribe" if service.startswith("https://") else ""

    @field_validator("retry")
    @classmethod
    def _known_channels(cls, value: dict[str, RetryOverrides]) -> dict[str, RetryOverrides]:
        unknown = sorted(set(value) - set(CHANNEL_NAMES))
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r}; channels are {', '.join(CHANNEL_NAMES)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        file_source = InitSettingsSource(settings_cls, init_kwargs=dict(_file_values.get() or {}))
        return (init_settings, env_settings, dotenv_settings, file_source)

    @property
    def store_url(self) -> str:
        """The journal URL, defaulting to a SQLite file in the data directory."""
        return self.store.url or f"sqlite:///{self.service.data_dir / 'broadcaster.db'}"

    def lane_policy(self, channel: str) -> LanePolicy:
        """The channel's defaults with its [retry.<channel>] keys laid over them."""
        policy = LANE_DEFAULTS.get(channel, LanePolicy())
        overrides = self.retry.get(channel)
        if overrides is None:
            return policy
        given = {f.name: getattr(overrides, f.name) for f in fields(LanePolicy)}
        return replace(policy, **{k: v for k, v in given.items() if v is not None})

    def secret_values(self) -> list[str]:
        """Every configured secret in clear, each once: every SecretStr (and the credential inside an
        "Authorization"-style value), and the credential-bearing parts of every URL field marked
        SecretUrl (config.secrets decides what those are)."""
        return collect_secrets(self).values()

    @cached_property
    def scrubber(self) -> Scrubber:
        """The one scrubber for these settings, built on first use: everything that is printed, logged or
        journaled goes through it."""
        secrets = collect_secrets(self)
        return Scrubber(secrets.credentials, url_parts=secrets.url_parts)


@contextmanager
def file_values(values: dict[str, Any]) -> Iterator[None]:
    """Make a parsed config file the weakest source of the Settings() built inside this block."""
    token = _file_values.set(values)
    try:
        yield
    finally:
        _file_values.reset(token)
