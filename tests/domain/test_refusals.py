"""What UpdateDraft refuses beyond the basics: characters no feed reader can take, and times so far ahead
that the journal could not read them back. Each refusal names the field and the code point or limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from broadcaster.domain.models import MAX_DAYS_AHEAD, UpdateDraft


def refusal(**fields: Any) -> tuple[tuple[str | int, ...], str]:
    """The one problem UpdateDraft reports for a new incident with these fields: (where, message)."""
    base: dict[str, Any] = {"title": "API errors", "status": "investigating", "message": "Looking into it."}
    with pytest.raises(ValidationError) as caught:
        UpdateDraft.model_validate(base | fields)
    [error] = caught.value.errors(include_url=False)
    return tuple(error["loc"]), error["msg"].removeprefix("Value error, ")


XML_CANNOT_CARRY = ", which XML (the Atom feed) cannot carry"


@pytest.mark.parametrize(
    ("character", "described"),
    [
        ("\ufffe", "a noncharacter (U+FFFE)"),
        ("\uffff", "a noncharacter (U+FFFF)"),
        ("\ud800", "a lone surrogate (U+D800)"),
        ("\udfff", "a lone surrogate (U+DFFF)"),
    ],
)
def test_characters_xml_cannot_carry_are_refused_in_every_text_field(character: str, described: str) -> None:
    expected = f"contains {described} at position 4{XML_CANNOT_CARRY}"
    assert refusal(title=f"API {character}") == (("title",), expected)
    assert refusal(message=f"Now {character}") == (("message",), expected)
    # The key is in the location too, but pydantic replaces a lone surrogate in it.
    where, message = refusal(components={f"API {character}": "major_outage"})
    assert (where[0], where[-1], message) == ("components", "[key]", expected)
    assert refusal(author=f"ops {character}") == (("author",), expected)


def test_control_characters_keep_their_own_description() -> None:
    assert refusal(title="API \x1b[31m") == (("title",), "contains a control character (U+001B) at position 4")


def test_characters_xml_can_carry_are_accepted() -> None:
    """The last character before the surrogates, the first after them, U+FFFD and beyond the BMP."""
    text = "\ud7ff \ue000 \ufffd \U0001f525 \U0010fffd"
    assert UpdateDraft(title=text, status="investigating", message=text).title == text


@pytest.mark.parametrize("field", ["next_update_at", "scheduled_for"])
def test_times_more_than_ten_years_ahead_are_refused(field: str) -> None:
    status = "scheduled" if field == "scheduled_for" else "investigating"
    too_far = datetime.now(UTC) + timedelta(days=MAX_DAYS_AHEAD + 1)
    expected = f"too far in the future (at most {MAX_DAYS_AHEAD} days, about ten years, ahead)"
    assert refusal(status=status, **{field: too_far}) == ((field,), expected)


def test_a_time_near_the_year_9999_is_refused_not_an_overflow() -> None:
    """In UTC it would be in the year 10000: the journal, which stores epoch seconds, could never read it."""
    last_hour = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    where, message = refusal(next_update_at=last_hour)
    assert (where, message.startswith("too far in the future")) == (("next_update_at",), True)


def test_a_time_with_no_utc_equivalent_is_refused() -> None:
    first_hour = datetime(1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=5)))
    assert refusal(next_update_at=first_hour) == (("next_update_at",), "out of range: it has no UTC equivalent")


def test_ten_years_ahead_is_accepted() -> None:
    soon_enough = datetime.now(UTC) + timedelta(days=MAX_DAYS_AHEAD - 1)
    assert UpdateDraft(title="T", status="investigating", message="M", next_update_at=soon_enough).next_update_at
