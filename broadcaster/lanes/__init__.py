"""Lanes: one per channel, each with its own queue, workers, timeouts, retries and breakers."""

from broadcaster.lanes.events import EventKind, LaneEvent, LaneStatus, Observer
from broadcaster.lanes.lane import HANDOFF_LIMIT, Lane

__all__ = ["HANDOFF_LIMIT", "EventKind", "Lane", "LaneEvent", "LaneStatus", "Observer"]
