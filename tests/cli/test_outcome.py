"""What `send` and `retry` exit with, from the states of the deliveries they followed."""

from __future__ import annotations

import pytest

from broadcaster.cli.deliver import EXIT_DELIVERED, EXIT_NOT_DELIVERED, conclude
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store import Delivery


def delivery(state: DeliveryState) -> Delivery:
    return Delivery(
        id="d",
        update_id="u",
        incident_id="i",
        update_seq=1,
        channel="email",
        target="t",
        state=state,
        attempts=1,
        max_attempts=3,
        created_at=0,
        not_before=0,
        expires_at=1,
        finished_at=None,
        last_error="",
        detail="",
        external_id=None,
    )


@pytest.mark.parametrize(
    ("states", "code"),
    [
        ([DeliveryState.DELIVERED, DeliveryState.DELIVERED], EXIT_DELIVERED),
        ([DeliveryState.DELIVERED, DeliveryState.SUPERSEDED], EXIT_DELIVERED),
        ([DeliveryState.DELIVERED, DeliveryState.PENDING], EXIT_NOT_DELIVERED),
        ([DeliveryState.DELIVERED, DeliveryState.IN_FLIGHT], EXIT_NOT_DELIVERED),
        ([DeliveryState.FAILED], EXIT_NOT_DELIVERED),
        ([DeliveryState.EXPIRED, DeliveryState.DELIVERED], EXIT_NOT_DELIVERED),
    ],
)
def test_exit_code_follows_the_deliveries(
    states: list[DeliveryState], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """Superseded counts as done (a newer update went out instead); anything else short of delivered is 3."""
    assert conclude([delivery(state) for state in states]) == code
    said = capsys.readouterr().err
    assert ("Delivered on all" in said) == (code == EXIT_DELIVERED)
    if DeliveryState.PENDING in states:
        assert "broadcaster retry" in said
