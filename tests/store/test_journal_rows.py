"""The journal's row mapping: the column list and the Delivery record must agree field for field."""

from __future__ import annotations

from dataclasses import fields

from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store import Delivery
from broadcaster.store.sqlite.schema import DELIVERY_FIELDS, delivery_from_values


def test_delivery_columns_are_in_the_order_of_the_record() -> None:
    """delivery_from_values builds a Delivery positionally, so the orders must match exactly."""
    assert tuple(field.name for field in fields(Delivery)) == DELIVERY_FIELDS


def test_a_row_of_values_becomes_a_delivery() -> None:
    values = ["d1", "u1", "i1", 2, "webhook", "t", "in_flight", 1, 8, 1.0, 2.0, 3.0, None, "", "ok", None]
    delivery = delivery_from_values(values)
    assert delivery.state is DeliveryState.IN_FLIGHT
    assert (delivery.id, delivery.target, delivery.max_attempts, delivery.detail) == ("d1", "t", 8, "ok")
