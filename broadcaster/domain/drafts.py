"""Validating a submitted update, whatever it came through (a flag, a form field, a JSON key), with every
problem reported under the name the submitter used."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from typing import Any, Final

from pydantic import ValidationError

from broadcaster.domain.errors import InputError
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.text import printable

SAME_UPDATE_WITHIN: Final = 60.0
"""Seconds within which the form and chat take a submission of the same content (content_digest) as the
update already posted: two commanders posting the same words at once, or one pressing send twice."""


def content_digest(draft: UpdateDraft, channels: Collection[str]) -> str:
    """What makes two submissions the same update, whoever sent them and however: the incident (or the new
    incident's title), status, message, components and maintenance times, with runs of white space taken as
    one, going to the same `channels` (those planned: "every channel" and each one ticked on the form are the
    same). Not the author; not "next update by" (a chat command's `next 30m` and a form posted seconds apart
    promise the same update at slightly different times); not the impact (chat states it, the form may leave
    it to be worked out from the components: the same words in the same minute are the same update)."""
    exclude = {"author", "next_update_at", "reopen", "channels", "impact"}
    fields = draft.model_dump(mode="json", exclude=exclude)
    fields["message"] = " ".join(draft.message.split())
    if draft.title is not None:
        fields["title"] = " ".join(draft.title.split()).casefold()
    fields["channels"] = sorted(set(channels))
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


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
        # A problem of the update as a whole (two fields that do not go together) names its fields itself.
        summary = "; ".join(
            message if label == "update" else f"{label}: {message}" for label, message in problems.items()
        )
        raise InputError(summary, problems) from None
