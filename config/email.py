"""[email]: subscriber email over SMTP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator

from config.sections import Section


class EmailSettings(Section):
    enabled: bool = False
    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str = ""
    subscribers_file: Path | None = None
    unsubscribe_url: str = ""

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> EmailSettings:
        if self.enabled:
            if not self.from_addr:
                raise ValueError("enabled = true requires from_addr")
            if self.subscribers_file is None:
                raise ValueError("enabled = true requires subscribers_file")
        return self
