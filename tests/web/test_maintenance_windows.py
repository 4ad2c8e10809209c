"""A maintenance window that makes no sense is refused whatever it came through: over the API (here), the
form and chat as on the command line (the rule is the domain's, in apply_update), with a 422 naming the
field and the times involved, and nothing journaled."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.web.conftest import AUTH, Service, conforms

MAINTENANCE: dict[str, Any] = {"title": "Database upgrade", "status": "scheduled", "message": "Read-only for an hour."}
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ"


def hours_from_now(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


async def refusal(service: Service, fields: dict[str, Any]) -> dict[str, Any]:
    """The problem the API answers for this maintenance, after checking it is a 422 in the contract's shape."""
    response = await service.client.post("/api/v1/updates", json={**MAINTENANCE, **fields}, headers=AUTH)
    body: dict[str, Any] = await response.json()
    assert response.status == 422, body
    conforms(body, "Problem")
    return body


async def journaled(service: Service) -> list[Any]:
    listed: dict[str, list[Any]] = await (await service.client.get("/api/v1/incidents", headers=AUTH)).json()
    return listed["incidents"]


@pytest.mark.parametrize(
    "window",
    [{}, {"scheduled_for": hours_from_now(24)}, {"scheduled_until": hours_from_now(26)}],
    ids=["no window", "no end", "no start"],
)
async def test_a_scheduled_maintenance_without_its_window_is_422(service: Service, window: dict[str, str]) -> None:
    body = await refusal(service, window)
    assert body["error"] == "a scheduled maintenance needs its window: give scheduled_for and scheduled_until"
    assert set(body["fields"]) == {"scheduled_for", "scheduled_until"} - set(window)
    assert await journaled(service) == []


async def test_a_window_that_is_over_is_422_with_both_times(service: Service) -> None:
    body = await refusal(service, {"scheduled_for": hours_from_now(-3), "scheduled_until": hours_from_now(-1)})
    assert re.fullmatch(rf"scheduled_until {STAMP} is in the past \(it is {STAMP} now\)", body["error"]), body
    assert list(body["fields"]) == ["scheduled_until"]
    assert await journaled(service) == []


async def test_a_scheduled_start_in_the_past_is_422_pointing_to_in_progress(service: Service) -> None:
    body = await refusal(service, {"scheduled_for": hours_from_now(-1), "scheduled_until": hours_from_now(1)})
    assert re.fullmatch(
        rf"scheduled_for {STAMP} is in the past \(it is {STAMP} now\); a maintenance under way is in_progress",
        body["error"],
    ), body
    assert list(body["fields"]) == ["scheduled_for"]
    assert await journaled(service) == []


async def test_a_sensible_window_and_a_completed_one_recorded_afterwards_are_accepted(service: Service) -> None:
    ahead = {"scheduled_for": hours_from_now(24), "scheduled_until": hours_from_now(26)}
    response = await service.client.post("/api/v1/updates", json={**MAINTENANCE, **ahead}, headers=AUTH)
    assert response.status == 202, await response.text()
    after_the_fact = {"status": "completed", "scheduled_for": hours_from_now(-3), "scheduled_until": hours_from_now(-1)}
    response = await service.client.post("/api/v1/updates", json={**MAINTENANCE, **after_the_fact}, headers=AUTH)
    assert response.status == 202, await response.text()
