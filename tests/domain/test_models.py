"""Validation of submitted updates: every refusal says which field and why."""

from __future__ import annotations

import itertools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from broadcaster.domain import models
from broadcaster.domain.models import ID_PATTERN, MAX_MESSAGE, MAX_TITLE, UpdateDraft, delivery_ids, new_id


def draft(**fields: Any) -> UpdateDraft:
    base: dict[str, Any] = {"title": "API errors", "status": "investigating", "message": "Looking into it."}
    base.update(fields)
    return UpdateDraft.model_validate({k: v for k, v in base.items() if v is not None})


def problem(**fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        draft(**fields)
    return str(caught.value)


def test_a_plain_new_incident_is_accepted() -> None:
    """The minimal valid update: a title, a status and a message."""
    update = draft()
    assert update.title == "API errors"
    assert update.status.value == "investigating"


def test_empty_and_blank_messages_are_refused() -> None:
    """A message of nothing or only whitespace says nothing to customers."""
    assert "message" in problem(message="")
    assert "message" in problem(message="   \n  ")


def test_unknown_status_is_refused_with_the_allowed_values() -> None:
    """The error lists the statuses that would have been accepted."""
    text = problem(status="broken")
    assert "status" in text
    assert "investigating" in text and "completed" in text


def test_over_long_title_and_message_are_refused() -> None:
    """Fields have limits that every channel can carry."""
    assert "title" in problem(title="x" * (MAX_TITLE + 1))
    assert "message" in problem(message="x" * (MAX_MESSAGE + 1))
    assert draft(title="x" * MAX_TITLE, message="y" * MAX_MESSAGE)


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[31m", "\x7f", "\u202e", "\x85"])
def test_control_characters_are_refused(bad: str) -> None:
    """Terminal escapes, NULs and bidi overrides would corrupt or disguise what people read."""
    assert "control character" in problem(message=f"before {bad} after")
    assert "control character" in problem(title=f"API {bad} errors")


def test_messages_keep_newlines_and_titles_do_not() -> None:
    """A message may have paragraphs; a title is one line. Windows line ends are normalised."""
    assert draft(message="one\r\ntwo\n\nthree").message == "one\ntwo\n\nthree"
    assert "single line" in problem(title="two\nlines")


def test_exactly_one_of_title_or_incident_id() -> None:
    """Opening and updating are distinct: both or neither is a mistake."""
    assert "either a title" in problem(title=None)
    assert "either a title" in problem(incident_id=new_id())


def test_incident_id_format_is_checked() -> None:
    assert "not an incident id" in problem(title=None, incident_id="../../etc/passwd")


def test_impact_must_match_the_kind_of_status() -> None:
    """Maintenance has impact "maintenance"; an incident cannot."""
    assert "does not go with" in problem(status="scheduled", impact="critical")
    assert "does not go with" in problem(status="investigating", impact="maintenance")
    assert draft(status="scheduled", impact="maintenance")


def test_unknown_component_state_is_refused() -> None:
    assert "components" in problem(components={"API": "on_fire"})


def test_times_need_a_zone() -> None:
    """A time without a zone is ambiguous in an incident spanning offices."""
    naive = datetime(2030, 1, 1, 12, 0)
    assert "next_update_at" in problem(next_update_at=naive)
    assert draft(next_update_at=datetime(2030, 1, 1, 12, 0, tzinfo=UTC))


def test_maintenance_window_must_be_ordered() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    assert "scheduled_until must be after" in problem(
        status="scheduled", scheduled_for=start, scheduled_until=start - timedelta(hours=1)
    )
    assert "maintenance statuses only" in problem(scheduled_for=start)


def test_channels_are_deduplicated_and_cannot_be_empty() -> None:
    assert draft(channels=["mirror", "mirror", "email"]).channels == ["mirror", "email"]
    assert "at least one channel" in problem(channels=[])


def test_unknown_fields_are_refused() -> None:
    """A typo in an API field must not be silently dropped."""
    assert "severity" in problem(severity="high")


def test_new_ids_are_distinct_and_url_safe() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all((len(i) == 12 and i.isalnum() and i.islower()) or i.isdigit() for i in ids)


def test_one_updates_delivery_ids_are_distinct_well_formed_and_side_by_side() -> None:
    """Side by side: one prefix, consecutive numbers (so they sit together in the journal's id index); and
    another update's ids start elsewhere."""
    first, second = delivery_ids(1000), delivery_ids(1000)
    assert len(set(first + second)) == 2000
    assert all(ID_PATTERN.match(i) for i in first + second)
    assert len({i[: models.RUN_PREFIX] for i in first}) == 1
    assert first[0][: models.RUN_PREFIX] != second[0][: models.RUN_PREFIX]
    numbers = [int("".join(f"{models.ID_ALPHABET.index(c):05b}" for c in i[models.RUN_PREFIX :]), 2) for i in first]
    assert all((b - a) % models.RUN_SPAN == 1 for a, b in itertools.pairwise(numbers))
    assert delivery_ids(0) == []


def test_delivery_ids_take_a_new_prefix_when_the_counter_is_used_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past RUN_SPAN ids, a new prefix: the counter never comes round to an id it already gave."""
    monkeypatch.setattr(models, "RUN_SPAN", 16)
    ids = delivery_ids(40)
    assert len(set(ids)) == 40
    assert [len({i[: models.RUN_PREFIX] for i in ids[start : start + 16]}) for start in (0, 16, 32)] == [1, 1, 1]
    assert len({i[: models.RUN_PREFIX] for i in ids}) == 3


def test_delivery_ids_counting_past_the_last_number_wrap_to_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "randbelow", lambda _limit: models.RUN_SPAN - 2)
    assert [i[models.RUN_PREFIX :] for i in delivery_ids(4)] == ["zzzy", "zzzz", "0000", "0001"]
