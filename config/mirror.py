"""[mirror]: the static-file status mirror."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from config.sections import Section


class MirrorSettings(Section):
    enabled: bool = True
    directories: list[Path] = Field(
        default=[Path("public")],
        description="Every directory gets the whole site; each is its own delivery target, so one broken "
        "mount never holds back another.",
    )
    page_title: str = "Service status"
    components: list[str] = Field(
        default=[],
        description="Components always listed, in this order, even while operational. Components named "
        "in updates are added after them.",
    )
    history_days: int = Field(default=14, ge=1, le=365, description="Days of resolved incidents on index.html")

    @field_validator("directories")
    @classmethod
    def _unique_directories(cls, value: list[Path]) -> list[Path]:
        if len({str(p) for p in value}) != len(value):
            raise ValueError("a directory is listed twice")
        return value

    @model_validator(mode="after")
    def _somewhere_to_write(self) -> MirrorSettings:
        if self.enabled and not self.directories:
            raise ValueError("enabled = true requires at least one directory")
        return self
