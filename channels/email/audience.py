"""Who gets an update's email: the operator's subscribers file (when there is one) and the journal's
confirmed subscribers, each once, filtered by the components they follow and by the suppression lists."""

from __future__ import annotations

from dataclasses import dataclass

from broadcaster.domain.errors import StoreError
from channels.base import JournalReader, SubscriberReader
from channels.email.subscribers import SubscriberFile
from channels.subscriber_lists import Subscriber, SubscriberList, SubscribersUnavailable


@dataclass(frozen=True, slots=True)
class Audience:
    """Who this update is for: `recipients` (subscribed to what it touches, not suppressed, or already done
    by an earlier attempt), and how many were left out and why."""

    recipients: list[Subscriber]
    suppressed: int
    other_components: int
    bad_lines: int


class Everyone:
    """Every subscriber: the file's in file order, then the journal's; where both list an address, the
    journal's entry (what its owner chose on the manage page) wins."""

    def __init__(self, file: SubscriberFile | None, journal: JournalReader) -> None:
        self._file = file
        self._journal = journal

    async def load(self) -> SubscriberList:
        """Raises SubscribersUnavailable when the file or the journal cannot be read."""
        listed = await self._file.load() if self._file is not None else SubscriberList((), ())
        if not isinstance(self._journal, SubscriberReader):
            return listed
        try:
            joined = await self._journal.subscribers("email")
        except StoreError as exc:
            raise SubscribersUnavailable(f"cannot read the journal's subscribers: {exc}") from None
        if not joined:
            return listed
        chosen = {s.address.lower(): Subscriber(s.address, s.followed) for s in joined}
        kept = tuple(chosen.pop(s.key, s) for s in listed.subscribers)
        return SubscriberList(kept + tuple(chosen.values()), listed.problems)
