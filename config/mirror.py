"""[mirror]: the static-file status mirror."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final

from pydantic import AfterValidator, Field, field_validator, model_validator

from config.publish import PublishTarget, target_name, unique_labels
from config.sections import BaseUrl, Section

# What a status page cannot show: C0 and C1 controls and DEL (ESC and CSI start terminal escape sequences,
# and the page's JSON and HTML are read with cat too), and what XML 1.0 cannot carry at all (lone
# surrogates, U+FFFE, U+FFFF: the page title is history.atom's title). Update text is held to the same
# rule in broadcaster/domain/models.py, which the settings, a leaf, cannot import.
_UNSHOWABLE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _showable(text: str) -> str:
    if match := _UNSHOWABLE.search(text):
        raise ValueError(f"contains a character a status page cannot show (U+{ord(match.group()):04X})")
    return text


ShowableText = Annotated[str, AfterValidator(_showable)]


class MirrorSettings(Section):
    enabled: bool = True
    directories: list[Path] = Field(
        default=[Path("public")],
        description="Every directory gets the whole site; each is its own delivery target, so one broken "
        "mount never holds back another.",
    )
    public_url: BaseUrl = Field(
        default="",
        description="Where the status site is served (e.g. https://status.example.com): links in emails, "
        "posts, feeds and shortlinks. Empty: pages link to each other relatively.",
    )
    page_title: ShowableText = "Service status"
    components: list[ShowableText] = Field(
        default=[],
        description="Components always listed, in this order, even while operational. Components named "
        "in updates are added after them.",
    )
    history_days: int = Field(default=14, ge=1, le=365, description="Days of resolved incidents on index.html")
    publish: list[PublishTarget] = Field(
        default=[],
        description="[[mirror.publish]]: where the site is published off this box (s3, git, sftp); each is "
        "its own target of the mirror lane, publish:<name>.",
    )

    @field_validator("directories")
    @classmethod
    def _unique_directories(cls, value: list[Path]) -> list[Path]:
        if len({str(p) for p in value}) != len(value):
            raise ValueError("a directory is listed twice")
        return value

    @field_validator("publish")
    @classmethod
    def _unique_publish_names(cls, value: list[PublishTarget]) -> list[PublishTarget]:
        return unique_labels(value)

    @model_validator(mode="after")
    def _somewhere_to_write(self) -> MirrorSettings:
        if self.enabled and not self.directories and not self.publish:
            raise ValueError("enabled = true requires at least one directory or [[mirror.publish]] target")
        return self

    def target_names(self) -> list[str]:
        """Every directory, then every publish target (publish:<name>): the mirror lane's targets."""
        return [str(path) for path in self.directories] + [target_name(target) for target in self.publish]
