"""Who a delivery has mailed, and its saving to the journal as it goes.

Each recipient's verdict is kept by lower-cased address: "" when the relay accepted the message, the
relay's reply when it refused the recipient. An acceptance is saved (Job.save_progress) before its
connection starts the next transaction, so a process killed at any moment repeats at most the one
transaction in hand on each pooled connection; if it cannot be saved, the fan-out stops rather than mail
on without a record. Refusals are held until a later acceptance shows the relay is taking mail: a run of
refusals may be the relay refusing us (see fanout.REFUSAL_GUARD), and then those recipients must be tried
again, not recorded as refused."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

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


class ProgressLog:
    """Records verdicts in a Progress and saves them to the journal."""

    def __init__(self, progress: Progress, save: SaveProgress) -> None:
        self.progress = progress
        self._save = save
        self._unsaved: dict[str, str] = {}
        self._held: dict[str, str] = {}
        """Refusals since the last acceptance: not saved until another acceptance confirms them."""
        self._saving: set[asyncio.Future[None]] = set()

    @property
    def refusals_in_a_row(self) -> int:
        return len(self._held)

    def accepted(self, key: str) -> None:
        self.progress.verdicts[key] = ACCEPTED
        self.progress.accepted_count += 1
        self._unsaved |= self._held
        self._unsaved[key] = ACCEPTED
        self._held = {}

    def refused(self, key: str, reply: str) -> None:
        self.progress.verdicts[key] = self._held[key] = reply

    async def save(self) -> None:
        """Save the acceptances and the refusals they confirmed. Raises StoreError when the journal cannot
        record them (or the lease is lost): the caller must not start another transaction then."""
        entries, self._unsaved = self._unsaved, {}
        if not entries:
            return
        # A task of its own, so that a save already handed to the journal completes, and can be waited for
        # on the way out, even if the worker that made it is cancelled meanwhile.
        saving = asyncio.ensure_future(self._save(entries))
        self._saving.add(saving)
        saving.add_done_callback(self._saving.discard)
        try:
            await asyncio.shield(saving)
        except BaseException:
            if saving.done() and not saving.cancelled() and saving.exception() is not None:
                self._unsaved = entries | self._unsaved  # not written: for whoever saves next
            raise

    async def finish(self, *, keep_refusals: bool) -> None:
        """On the way out: wait for saves in flight, then save what is left; the refusals still held too when
        `keep_refusals` (the relay was not refusing us)."""
        if self._saving:
            await asyncio.wait(set(self._saving))
        if keep_refusals:
            self._unsaved |= self._held
            self._held = {}
        await self.save()
