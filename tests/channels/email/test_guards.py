"""What keeps a fan-out from doing harm when something other than a recipient is at fault: a relay that
starts refusing everyone, a journal that cannot record who was mailed, a lease lost to another process,
an attempt whose time is nearly out."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from broadcaster.domain.errors import LeaseLost, StoreError
from channels.base import PermanentError, TransientError
from channels.email.fanout import REFUSAL_GUARD
from tests.channels.email.conftest import Configure, Relay, email_channel
from tests.channels.email.jobs import Attempts, attempts
from tests.channels.email.smtp_server import Script, smtp_server

POOL = 4


def people(count: int) -> list[str]:
    return [f"user{n:04d}@example.org" for n in range(count)]


async def test_a_relay_that_turns_to_refusing_everyone_suppresses_nobody(configure: Configure, workdir: Path) -> None:
    """Five are mailed, then the relay answers "550 relaying denied" to everyone, here in a later attempt
    that resumes the first: the run of refusals is the relay's doing, so the delivery fails, nobody is
    suppressed, and none of them is recorded as refused (a retry, once the relay is fixed, mails them)."""
    everyone = people(60)
    with smtp_server(Script(defer_once={address: "451 4.7.1 Try later" for address in everyone[5:]})) as server:
        settings = configure(Relay(server.port), subscribers=everyone, email={"pool_size": POOL})
        story = attempts()
        async with email_channel(settings) as channel:
            with pytest.raises(TransientError):
                await channel.send(story.next())
            assert sorted(story.progress) == everyone[:5]
            server.recorder.script.refuse_every_rcpt = "550 5.7.1 Relaying denied"
            with pytest.raises(PermanentError) as raised:
                await channel.send(story.next())
    assert f"refused {REFUSAL_GUARD} recipients in a row" in str(raised.value)
    assert "none of them was suppressed" in str(raised.value)
    assert not (workdir / "var" / "email-suppressed.txt").exists()
    assert sorted(story.progress) == everyone[:5]  # the refusals were not recorded


async def test_bounces_confirmed_by_a_later_acceptance_are_suppressed(configure: Configure, workdir: Path) -> None:
    """A few real bounces among deliveries that go through are the recipients' own: recorded and suppressed."""
    everyone = people(30)
    bounced = everyone[3:6]
    with smtp_server(Script(refuse=dict.fromkeys(bounced, "550 5.1.1 No such user"))) as server:
        settings = configure(Relay(server.port), subscribers=everyone, email={"pool_size": POOL})
        story = attempts()
        async with email_channel(settings) as channel:
            receipt = await channel.send(story.next())
    assert receipt.detail == "27 accepted, 3 refused (550) of 30"
    assert {key for key, note in story.progress.items() if note} == set(bounced)
    suppressed = (workdir / "var" / "email-suppressed.txt").read_text()
    assert all(address in suppressed for address in bounced)


class FailingJournal(Attempts):
    """Saves the first `works` acceptances' progress, then raises `error` on every save."""

    works = 3
    error = StoreError("journal write failed: database or disk is full")

    async def save_progress(self, entries: Mapping[str, str]) -> None:
        if self.saves >= self.works:
            raise self.error
        await super().save_progress(entries)


@pytest.mark.parametrize(
    "error",
    [StoreError("journal write failed: database or disk is full"), LeaseLost("no longer leased to this process")],
)
async def test_a_fan_out_that_cannot_record_who_was_mailed_stops(configure: Configure, error: StoreError) -> None:
    """Mailing on without a record would let a crash mail everyone since twice: the fan-out stops, each
    connection after the message in hand, and says why."""
    everyone = people(200)
    with smtp_server(Script(reply_delay=0.002)) as server:
        settings = configure(Relay(server.port), subscribers=everyone, email={"pool_size": POOL})
        incident, history = attempts().incident, attempts().history
        story = FailingJournal(incident, history)
        story.error = error
        async with email_channel(settings) as channel:
            with pytest.raises(TransientError, match="the journal cannot record who was mailed") as raised:
                await channel.send(story.next())
    assert str(error) in str(raised.value)
    assert len(server.recorder.received) <= story.works + POOL  # at most one more message per connection
    assert len(server.recorder.received) < len(everyone)


async def test_a_fan_out_ends_before_the_attempt_times_out(configure: Configure) -> None:
    """Near the lane's deadline the fan-out stops starting messages, rather than be cut off mid-message by
    the lane: what is left waits for the next attempt."""
    everyone = people(400)
    with smtp_server(Script(reply_delay=0.005)) as server:
        settings = configure(Relay(server.port), subscribers=everyone, email={"pool_size": 2, "command_timeout": 0.5})
        story = attempts()
        job = replace(story.next(), deadline=time.time() + 1.0)
        async with email_channel(settings) as channel:
            with pytest.raises(TransientError, match="the attempt's time ran out"):
                await channel.send(job)
        sent = len(server.recorder.received)
    assert 0 < sent < len(everyone)
    assert sorted(story.progress) == sorted(r.recipients[0] for r in server.recorder.received)
