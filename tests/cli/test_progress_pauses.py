"""Paused targets in send's and retry's progress and summary: a channel is shown as held only when everything
it still has to do waits on a pause, and a channel with many paused targets names a few of them and counts
the rest, in the progress line and in the summary alike."""

from __future__ import annotations

import io
from dataclasses import replace

from broadcaster.cli.progress import MOST_HINTS, Progress, pauses_holding
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.lanes import LaneStatus
from broadcaster.store import Delivery
from broadcaster.store.base import LaneControl
from tests.cli.test_outcome import delivery

TARGETS = [f"hook-{n}" for n in range(MOST_HINTS + 2)]


def webhook_deliveries(targets: list[str]) -> list[Delivery]:
    pending = delivery(DeliveryState.PENDING)
    return [replace(pending, id=f"d{n}", channel="webhook", target=target) for n, target in enumerate(targets)]


async def progress_lines(paused_targets: list[str]) -> list[str]:
    """What send prints (without a terminal) for a webhook fan-out to TARGETS with these targets paused."""
    stream = io.StringIO()
    progress = Progress(stream, webhook_deliveries(TARGETS), live=False, clock=lambda: 0.0)
    status = LaneStatus(channel="webhook", paused=False, paused_targets=frozenset(paused_targets), in_flight=0)
    progress.watch_lanes(lambda: [status])
    async with progress:
        pass
    return stream.getvalue().splitlines()


async def test_many_paused_targets_are_named_a_few_at_a_time_and_counted() -> None:
    (line,) = await progress_lines(TARGETS)
    assert line.startswith(f"[00:00:00Z] webhook ({len(TARGETS)} targets): webhook target hook-0 is paused: ")
    assert line.count("is paused: `broadcaster resume webhook --target ") == MOST_HINTS
    assert line.endswith("; and 2 more paused")


async def test_a_channel_with_targets_that_are_not_paused_is_not_shown_as_held() -> None:
    assert await progress_lines(TARGETS[:2]) == []  # still waiting to start: no change to report


def test_the_summary_names_a_few_pauses_and_says_what_resumes_the_rest() -> None:
    controls = [
        LaneControl(channel="webhook", target=target, paused=True, reason="", updated_at=0.0) for target in TARGETS
    ]
    pauses = pauses_holding(controls, webhook_deliveries(TARGETS))
    assert len(pauses.notes) == MOST_HINTS + 1
    assert pauses.notes[-1] == "and 2 more paused"
    assert pauses.hold_all
    one = pauses_holding(controls[:1], webhook_deliveries(TARGETS[:2]))
    assert not one.hold_all  # hook-1 is not paused: retry resumes it without anyone lifting a pause
    assert one.lifted_by == "`broadcaster resume webhook --target hook-0`"
