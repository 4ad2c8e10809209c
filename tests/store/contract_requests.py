"""The store contract for a request sent again: an idempotency key answers the update it made (and is listed,
for a copy of the journal to carry), the same content within a window answers the first update. Part of
StoreContract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broadcaster.domain.errors import ConflictError
from broadcaster.store import Store
from tests.support.journal import planned, post


class RequestContract:
    async def test_idempotency_key_returns_the_original(self, journal: Store) -> None:
        first = await post(journal, planned(), key="k-1")
        again = await post(journal, planned(), key="k-1", message="A different body.")
        assert again.duplicate and again.update.id == first.update.id
        assert [d.id for d in again.deliveries] == [d.id for d in first.deliveries]
        assert len(await journal.incidents()) == 1

    async def test_an_idempotency_key_reused_for_other_content_is_a_conflict(self, journal: Store) -> None:
        """The same key with the same request answers the first update; with another request it is refused
        (the caller reused a key by mistake), and nothing new is journaled."""
        first = await post(journal, planned(), key="k-2", digest="sha-a")
        same = await post(journal, planned(), key="k-2", digest="sha-a")
        assert same.duplicate and same.update.id == first.update.id
        with pytest.raises(ConflictError, match="used for update"):
            await post(journal, planned(), key="k-2", digest="sha-b", message="Other content.")
        assert len(await journal.incidents()) == 1

    async def test_every_idempotency_key_is_listed_with_the_update_it_answers(self, journal: Store) -> None:
        """An update's own key, and a key whose request was answered with an update of the same content
        (it answers that update from then on); an update without a key is not listed."""
        keyed = await post(journal, planned(), key="k-3", digest="sha-c")
        same = await post(journal, planned(), key="k-4", digest="sha-d", same_within=60)
        assert same.duplicate and same.update.id == keyed.update.id
        await post(journal, planned(), title="Unkeyed")
        listed = {(k.key, k.update_id, k.request_digest) for k in await journal.keyed_requests()}
        assert listed == {("k-3", keyed.update.id, "sha-c"), ("k-4", keyed.update.id, "sha-d")}

    async def test_the_same_content_within_the_window_answers_the_first_update(self, journal: Store) -> None:
        """Chat and the form posting the same update at once make one; outside the window, with other
        content, to other channels, or without a window, each makes its own."""
        start = datetime.now(UTC)
        first = await post(journal, planned(), same_within=60, at=start, author="ann")
        again = await post(
            journal, planned(), same_within=60, at=start + timedelta(seconds=59), author="U123", message="An  update. "
        )
        assert again.duplicate and again.update.id == first.update.id
        assert [d.id for d in again.deliveries] == [d.id for d in first.deliveries]
        other = await post(journal, planned(), same_within=60, at=start + timedelta(seconds=59), message="Other.")
        later = await post(journal, planned(), same_within=60, at=start + timedelta(seconds=61))
        unwindowed = await post(journal, planned(), at=start + timedelta(seconds=62))
        elsewhere = await post(journal, planned(name="mirror"), same_within=60, at=start + timedelta(seconds=63))
        assert not (other.duplicate or later.duplicate or unwindowed.duplicate or elsewhere.duplicate)
        assert len({first.update.id, other.update.id, later.update.id, unwindowed.update.id, elsewhere.update.id}) == 5

    async def test_a_key_answered_by_the_same_content_keeps_answering_that_update(self, journal: Store) -> None:
        """The form's key, answered by the chat update of the same content, is remembered: the form sent again
        after the window still answers that update, and the key with other content is a conflict."""
        start = datetime.now(UTC)
        chat = await post(journal, planned(), same_within=60, at=start)
        form = await post(journal, planned(), same_within=60, at=start, key="form:1", digest="a")
        resent = await post(
            journal, planned(), same_within=60, at=start + timedelta(minutes=5), key="form:1", digest="a"
        )
        assert form.duplicate and resent.duplicate
        assert chat.update.id == form.update.id == resent.update.id
        with pytest.raises(ConflictError):
            await post(journal, planned(), key="form:1", digest="b", message="Other.")

    async def test_the_same_content_answers_only_while_it_is_the_incidents_latest(self, journal: Store) -> None:
        """A, B, then A again within the window: the third is an update of its own, undoing B."""
        start = datetime.now(UTC)
        a = await post(journal, planned(), at=start)
        incident = a.incident.id
        first = await post(journal, planned(), same_within=60, at=start, incident_id=incident, message="Fixing.")
        await post(journal, planned(), same_within=60, at=start, incident_id=incident, message="Worse.")
        third = await post(journal, planned(), same_within=60, at=start, incident_id=incident, message="Fixing.")
        assert not third.duplicate and third.update.id != first.update.id
        fourth = await post(journal, planned(), same_within=60, at=start, incident_id=incident, message="Fixing.")
        assert fourth.duplicate and fourth.update.id == third.update.id
