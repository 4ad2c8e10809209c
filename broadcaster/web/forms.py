"""Reading posted forms."""

from __future__ import annotations

from collections.abc import Mapping


def text_field(form: Mapping[str, object], name: str) -> str:
    """A text field of the posted form, "" when absent (or a file, which no real form sends here)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""
