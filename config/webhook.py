"""[webhook]: signed Statuspage-compatible deliveries (or Slack/Discord/Teams incoming-webhook JSON)."""

from __future__ import annotations

import hashlib
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from config.sections import Section


class WebhookTarget(Section):
    url: str
    secret: SecretStr | None = None
    format: Literal["json", "slack", "discord", "teams"] = "json"
    name: str | None = Field(
        default=None,
        description="How the target appears in the ledger, logs and CLI. Default: the URL's host and a short "
        "hash of the whole URL, because incoming-webhook URLs (Slack, Discord) carry their secret in the path.",
    )

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:8]
        return f"{urlsplit(self.url).hostname}#{digest}"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class WebhookSettings(Section):
    enabled: bool = False
    targets: list[WebhookTarget] = Field(default=[])

    @model_validator(mode="after")
    def _targets_when_enabled(self) -> WebhookSettings:
        if self.enabled and not self.targets:
            raise ValueError("enabled = true requires at least one [[webhook.targets]]")
        labels = [target.label for target in self.targets]
        if len(set(labels)) != len(labels):
            raise ValueError("two targets have the same name (or the same URL)")
        return self

    def target_names(self) -> list[str]:
        """The targets' ledger names, stable across restarts and free of secrets."""
        return [target.label for target in self.targets]
