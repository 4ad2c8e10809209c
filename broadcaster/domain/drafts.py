"""Validating a submitted update, whatever it came through (a flag, a form field, a JSON key), with every
problem reported under the name the submitter used."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from broadcaster.domain.errors import InputError
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.text import printable


def validate_draft(fields: dict[str, Any], names: dict[str, str]) -> UpdateDraft:
    """Validate, reporting each problem under the name the submitter used (a flag, a form field)."""
    try:
        return UpdateDraft.model_validate(fields)
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            field = str(loc[0]) if loc else ""
            # loc[1] is a component's name as submitted: it may hold the very escape sequence refused.
            label = names.get(field, field) + (f" {printable(str(loc[1]))}" if len(loc) > 1 else "")
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] in ("enum", "literal_error") and isinstance(error.get("input"), str):
                message += f" (got {error['input']!r})"
            problems[label or "update"] = message
        summary = "; ".join(f"{label}: {message}" for label, message in problems.items())
        raise InputError(summary, problems) from None
