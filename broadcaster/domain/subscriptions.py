"""Who follows an incident: one rule for every kind of subscriber (a line of the subscribers file, an
address or a webhook that subscribed itself), so no channel can answer it differently."""

from __future__ import annotations

from collections.abc import Collection


def follows(followed: Collection[str], affected: Collection[str]) -> bool:
    """True when a subscriber following `followed` (case-folded component names; empty: all of them)
    should hear of an incident affecting `affected` (case-folded). An incident that names no component
    is about the whole service, so it reaches everyone, whatever they follow."""
    if not followed or not affected:
        return True
    return any(name in followed for name in affected)
