"""What each chosen channel would send for a draft, before anything is journaled: the incident and the
update exactly as accepting the draft would make them (the same pure transition the journal runs), shown
to every channel that has the Previews capability."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.transitions import apply_update
from broadcaster.runtime import Runtime
from channels.base import ChannelContext, Previews


@dataclass(frozen=True, slots=True)
class ChannelPreview:
    channel: str
    text: str
    """What goes out; empty when the channel cannot tell before sending."""
    note: str


async def preview_draft(runtime: Runtime, draft: UpdateDraft) -> list[ChannelPreview]:
    """Each chosen channel's preview. Raises InputError as accepting would (an unknown incident, a status of
    the wrong kind). Channels are built as the lanes build them, without network I/O, and closed at once."""
    runtime.plan(draft.channels)  # refuses an unknown or disabled channel, as accepting would
    current = None if draft.incident_id is None else await runtime.store.incident(draft.incident_id)
    incident, update = apply_update(draft, current, datetime.fromtimestamp(runtime.clock(), UTC))
    chosen = draft.channels if draft.channels is not None else runtime.active_channels()
    context = ChannelContext(runtime.settings, runtime.store)
    previews = []
    for name in chosen:
        channel = runtime.registry.get(name).load().create(context)
        try:
            if isinstance(channel, Previews):
                shown = channel.preview(incident, update)
                previews.append(ChannelPreview(channel=name, text=shown.text, note=shown.note))
            else:
                previews.append(ChannelPreview(channel=name, text="", note="this channel shows no preview"))
        finally:
            await channel.aclose()
    return previews
