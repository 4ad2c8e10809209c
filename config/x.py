"""[x]: posts to X with OAuth 1.0a user-context credentials."""

from __future__ import annotations

from pydantic import SecretStr, model_validator

from config.sections import Section


class XSettings(Section):
    enabled: bool = False
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _credentials_when_enabled(self) -> XSettings:
        if self.enabled:
            missing = [
                name
                for name in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"enabled = true requires {', '.join(missing)}")
        return self
