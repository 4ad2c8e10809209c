"""[x]: posts to X with OAuth 1.0a user-context credentials."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, model_validator

from config.sections import Section


class XSettings(Section):
    """The X account the broadcaster posts as. All times are in seconds.

    enabled: post incident updates to X (default false).
    consumer_key, consumer_secret, access_token, access_token_secret: the app's OAuth 1.0a keys and the
        account's access token with read-write permission; all four are required when enabled.
    always_link: end every post with the link to the incident's page on the mirror (default false: only
        when the message had to be shortened). No link at all while [service] public_url is empty.
    connect_timeout: limit on opening a connection to the X API (default 10).
    request_timeout: limit on one API request, from connecting to the last byte of the answer (default 20;
        keep it below [retry.x] timeout, 30 by default, so the ledger says what timed out).
    """

    enabled: bool = False
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    access_token: SecretStr | None = None
    access_token_secret: SecretStr | None = None
    always_link: bool = False
    connect_timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    request_timeout: Annotated[float, Field(gt=0, le=600)] = 20.0

    @model_validator(mode="after")
    def _credentials_when_enabled(self) -> XSettings:
        if self.enabled:
            missing = [
                name
                for name in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
                if getattr(self, name) is None or not getattr(self, name).get_secret_value()
            ]
            if missing:
                raise ValueError(f"enabled = true requires {', '.join(missing)}")
        if self.connect_timeout > self.request_timeout:
            raise ValueError("connect_timeout must not exceed request_timeout")
        return self
