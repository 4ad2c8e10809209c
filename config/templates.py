"""Message templates (`[templates] NAME = "text"`): a good first sentence for a commander under stress.

One ships for each status, named after it; the configuration may change them, add its own, or withdraw one
with an empty text. Placeholders: {components} (the components the update affects, or "our services") and
{next_update} (when the next update is due, or "as soon as we know more"); {{ and }} are literal braces.
A template naming any other placeholder is a configuration error, found when the file is read."""

from __future__ import annotations

import string
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field

PLACEHOLDERS: Final = ("components", "next_update")

DEFAULT_TEMPLATES: Final[dict[str, str]] = {
    "investigating": (
        "We are investigating problems with {components}. Some customers may see errors or slow responses. "
        "We will post an update {next_update}."
    ),
    "identified": (
        "We have found the cause of the problems with {components} and are working on a fix. "
        "We will post an update {next_update}."
    ),
    "monitoring": (
        "A fix is in place and {components} is recovering. We are watching the results and will post an "
        "update {next_update}."
    ),
    "resolved": (
        "This incident is resolved: {components} works normally again. We are sorry for the trouble, and we "
        "will share what happened and what we are changing."
    ),
    "scheduled": "We will carry out planned maintenance on {components}. We will post an update {next_update}.",
    "in_progress": "Planned maintenance on {components} is in progress. We will post an update {next_update}.",
    "verifying": "The maintenance on {components} is done; we are checking that everything works as expected.",
    "completed": "The planned maintenance on {components} is complete and everything works normally.",
}


def check_template(text: str) -> str:
    """`text`, if it names only the known placeholders, plainly ({components}, never {components!r:>9})."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(text)]
    except ValueError as exc:
        raise ValueError(f"not a template: {exc} (write {{{{ and }}}} for a literal brace)") from None
    for name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            known = ", ".join("{" + placeholder + "}" for placeholder in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}}: templates may use {known}")
    return text


TemplateText = Annotated[str, Field(max_length=5000), AfterValidator(check_template)]


def with_defaults(configured: Any) -> Any:
    """The shipped templates, then the configuration's over them; an empty text withdraws one."""
    if not isinstance(configured, dict):
        return configured  # pydantic says what is wrong with it
    merged = {**DEFAULT_TEMPLATES, **configured}
    return {name: text for name, text in merged.items() if text != ""}
