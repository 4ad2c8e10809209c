"""[webhook]: signed Statuspage-compatible deliveries (or Slack/Discord/Teams incoming-webhook JSON)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from config.sections import Section


class WebhookTarget(Section):
    url: str
    secret: SecretStr | None = None
    format: Literal["json", "slack", "discord", "teams"] = "json"

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
        return self
