"""Who a delivery has mailed, and its saving to the journal as it goes.

Each recipient's verdict is kept by lower-cased address: "" when the relay accepted the message, the
relay's reply when it refused the recipient. An acceptance is saved (Job.save_progress) before its
connection starts the next transaction, so a process killed at any moment repeats at most the one
transaction in hand on each pooled connection. Refusals are saved along with the next acceptance: until
something is accepted, a run of refusals may be the relay refusing us (see fanout.REFUSAL_GUARD), and
those recipients must be tried again."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from broadcaster.domain.errors import StoreError
from channels.base import SaveProgress

log = logging.getLogger("broadcaster.email")

ACCEPTED = ""
"""The note of an accepted recipient; any other note is the reply that refused it."""


class Progress:
    """What this delivery's attempts have done, by lower-cased address."""

    def __init__(self, saved: Mapping[str, str]) -> None:
        self.verdicts: dict[str, str] = dict(saved)
        self.accepted_count = sum(1 for note in self.verdicts.values() if note == ACCEPTED)

    def done(self, key: str) -> bool:
        return key in self.verdicts

    def accepted(self, key: str) -> bool:
        return self.verdicts.get(key) == ACCEPTED

    def refusal(self, key: str) -> str | None:
        note = self.verdicts.get(key)
        return note or None

    @property
    def refused_count(self) -> int:
        return len(self.verdicts) - self.accepted_count


class ProgressLog:
    """Records verdicts in a Progress and saves them to the journal."""

    def __init__(self, progress: Progress, save: SaveProgress) -> None:
        self.progress = progress
        self._save = save
        self._unsaved: dict[str, str] = {}
        self._warned = False

    def accepted(self, key: str) -> None:
        self.progress.verdicts[key] = self._unsaved[key] = ACCEPTED
        self.progress.accepted_count += 1

    def refused(self, key: str, reply: str) -> None:
        self.progress.verdicts[key] = self._unsaved[key] = reply

    async def save(self, *, refusals_alone: bool = False) -> None:
        """Save what is not saved yet. Refusals wait for an acceptance unless `refusals_alone` (the end of a
        fan-out the relay did not refuse wholesale). A journal that cannot be written does not stop the
        mailing: it is logged once, and what was not saved goes with the next save."""
        if not self._unsaved or not (self.progress.accepted_count or refusals_alone):
            return
        entries, self._unsaved = self._unsaved, {}
        try:
            await self._save(entries)
        except StoreError as exc:
            self._unsaved = entries | self._unsaved
            if not self._warned:
                self._warned = True
                log.warning("email: cannot save delivery progress yet (will keep trying): %s", exc)
