"""Filling a message template's placeholders ({components}, {next_update}; see config/templates.py) from
what the update says, so that a commander starts from a finished sentence."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Final

NO_COMPONENTS: Final = "our services"
NO_NEXT_UPDATE: Final = "as soon as we know more"


def fill_template(text: str, *, components: Collection[str], next_update_at: datetime | None) -> str:
    """`text` with {components} as the names given ("API, Checkout and Web"; "our services" for none) and
    {next_update} as "by 2026-12-05 14:30 UTC" ("as soon as we know more" when no time is promised)."""
    names = [name for name in components if name]
    listed = (
        NO_COMPONENTS if not names else names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    )
    when = NO_NEXT_UPDATE
    if next_update_at is not None:
        when = "by " + next_update_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return text.format(components=listed, next_update=when)
