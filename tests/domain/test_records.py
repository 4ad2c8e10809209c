"""broadcaster.domain.records: hot records that are slotted, compared and hashed by value, as frozen ones were."""

from __future__ import annotations

import pytest

from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store.base import Outcome


def outcome(**changes: object) -> Outcome:
    fields: dict[str, object] = {
        "delivery_id": "d1",
        "state": DeliveryState.DELIVERED,
        "attempt": 1,
        "started_at": 1.0,
        "finished_at": 2.0,
    }
    return Outcome(**{**fields, **changes})  # type: ignore[arg-type]


def test_records_compare_and_hash_by_value() -> None:
    assert outcome() == outcome()
    assert hash(outcome()) == hash(outcome())
    assert outcome() != outcome(attempt=2)
    assert len({outcome(), outcome(), outcome(attempt=2)}) == 2


def test_records_are_slotted_so_a_mistyped_field_fails() -> None:
    record = outcome()
    with pytest.raises(AttributeError):
        record.atempt = 2  # type: ignore[attr-defined]
