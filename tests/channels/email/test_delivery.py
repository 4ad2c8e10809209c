"""EmailChannel.send against a real aiosmtpd server: who gets mail, how often, and what each reply means."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from broadcaster.domain.unsubscribe import unsubscribe_token
from channels.base import PermanentError, TransientError
from config.keys import stored_secret
from tests.channels.email.conftest import Configure, NoJournal, Relay, email_channel
from tests.channels.email.jobs import attempts
from tests.channels.email.smtp_server import Script, smtp_server


def addresses(count: int, domain: str = "example.org") -> list[str]:
    return [f"user{n:04d}@{domain}" for n in range(count)]


async def test_every_subscriber_receives_exactly_one_well_formed_message(configure: Configure, workdir: Path) -> None:
    """60 subscribers over 4 connections: one message each, addressed to them alone, parseable, same Message-ID."""
    people = addresses(60)
    with smtp_server() as server:
        settings = configure(Relay(server.port), subscribers=people)
        story = attempts("identified")
        async with email_channel(settings) as channel:
            receipt = await channel.send(story.next())
    received = server.recorder.received
    assert sorted(r.recipients[0] for r in received) == people
    assert all(len(r.recipients) == 1 and r.mail_from == "status@example.com" for r in received)
    for item in received:
        message = item.message
        assert message["To"] == item.recipients[0]
        address = item.recipients[0]
        token = unsubscribe_token(stored_secret(workdir / "var", "unsubscribe"), address)
        unsubscribe = f"<https://status.example.com/unsubscribe?email={address.replace('@', '%40')}&token={token}>"
        assert message["List-Unsubscribe"] == unsubscribe  # signed with the key made once in the data directory
        assert message["Message-ID"] == receipt.external_id == "<update.0ab000000001@example.com>"
        assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None
    assert receipt.detail == "60 accepted, 0 refused of 60"


async def test_connections_are_reused_across_messages_and_deliveries(configure: Configure) -> None:
    """Two deliveries of 25 messages each over a pool of 3: never more than 3 connections in all."""
    with smtp_server() as server:
        settings = configure(Relay(server.port), subscribers=addresses(25), email={"pool_size": 3})
        async with email_channel(settings) as channel:
            await channel.send(attempts(incident_id="inc00000000a").next())
            await channel.send(attempts(incident_id="inc00000000b").next())
    assert len(server.recorder.received) == 50
    assert len({item.client for item in server.recorder.received}) <= 3


async def test_recipients_answered_451_are_deferred_then_delivered_once(configure: Configure) -> None:
    """451 leaves those recipients for the next attempt, which mails them and nobody else."""
    people = addresses(20)
    deferred = {people[3]: "451 4.7.1 Try again later", people[11]: "451 4.3.0 Mailbox busy"}
    with smtp_server(Script(defer_once=deferred)) as server:
        settings = configure(Relay(server.port), subscribers=people)
        story = attempts()
        async with email_channel(settings) as channel:
            with pytest.raises(TransientError) as first:
                await channel.send(story.next())
            assert len(server.recorder.received) == 18
            receipt = await channel.send(story.next())
    assert "2 left for a later attempt (451 x 2); 18 accepted" in str(first.value)
    assert [len(server.recorder.messages_to(person)) for person in people] == [1] * 20
    assert receipt.detail == "20 accepted, 0 refused of 20"


async def test_recipients_answered_550_are_refused_and_suppressed(configure: Configure, workdir: Path) -> None:
    """550 is final for that recipient alone: recorded, listed in the suppression file, never mailed again."""
    people = addresses(10)
    bounced = people[2]
    with smtp_server(Script(refuse={bounced: "550 5.1.1 No such user"})) as server:
        settings = configure(Relay(server.port), subscribers=people)
        first, second = attempts("investigating"), attempts("investigating", "identified")
        async with email_channel(settings) as channel:
            receipt = await channel.send(first.next())
            later = await channel.send(second.next())
    assert receipt.detail == "9 accepted, 1 refused (550) of 10"
    assert {key: note for key, note in first.progress.items() if note} == {bounced: "550 5.1.1 No such user"}
    suppressed = (workdir / "var" / "email-suppressed.txt").read_text()
    assert suppressed.startswith(f"{bounced}\t") and "550 5.1.1 No such user" in suppressed
    assert later.detail == "9 accepted, 0 refused of 9; 1 suppressed"
    assert server.recorder.rcpt_seen.count(bounced) == 1


async def test_a_message_refused_at_data_is_not_a_bounce(configure: Configure, workdir: Path) -> None:
    """554 to DATA refuses this message for that recipient, but the address is not suppressed."""
    people = addresses(5)
    with smtp_server(Script(refuse_data={people[0]: "554 5.6.0 Content rejected"})) as server:
        settings = configure(Relay(server.port), subscribers=people)
        async with email_channel(settings) as channel:
            receipt = await channel.send(attempts().next())
    assert receipt.detail == "4 accepted, 1 refused (554) of 5"
    assert not (workdir / "var" / "email-suppressed.txt").exists()


async def test_a_server_dropping_the_connection_mid_batch_loses_no_recipient(configure: Configure) -> None:
    """Two drops mid-batch: the rest go out over new connections, the two in flight on the next attempt."""
    people = addresses(40)
    with smtp_server(Script(drop_at_data={5, 23})) as server:
        settings = configure(Relay(server.port), subscribers=people)
        story = attempts()
        async with email_channel(settings) as channel:
            with pytest.raises(TransientError, match="2 left for a later attempt"):
                await channel.send(story.next())
            receipt = await channel.send(story.next())
    assert [len(server.recorder.messages_to(person)) for person in people] == [1] * 40
    assert receipt.detail == "40 accepted, 0 refused of 40"


async def test_a_retry_never_mails_recipients_an_earlier_attempt_saved(configure: Configure) -> None:
    """Progress saved by an attempt that then crashed: the retry mails only the others."""
    people = addresses(12)
    with smtp_server() as server:
        settings = configure(Relay(server.port), subscribers=people)
        story = attempts()
        story.progress = dict.fromkeys(people[:7], "") | {people[7]: "550 5.1.1 No such user"}
        async with email_channel(settings) as channel:
            receipt = await channel.send(story.next())
    assert sorted(r.recipients[0] for r in server.recorder.received) == people[8:]
    assert receipt.detail == "11 accepted, 1 refused (550) of 12"


async def test_subscribers_get_only_incidents_touching_their_components(configure: Configure) -> None:
    """A subscriber with components gets incidents naming one of them; one without gets everything."""
    subscribers = "email,components\nall@example.org,\napi@example.org,API\nweb@example.org,Dashboard;Website\n"
    with smtp_server() as server:
        settings = configure(Relay(server.port), subscribers=subscribers)
        async with email_channel(settings) as channel:
            api = await channel.send(attempts(components={"api": "major_outage"}, incident_id="inc00000000a").next())
            web = await channel.send(
                attempts(components={"Website": "partial_outage"}, incident_id="inc00000000b").next()
            )
    recipients = {api.external_id: set[str](), web.external_id: set[str]()}
    for item in server.recorder.received:
        recipients[item.message["Message-ID"]].add(item.recipients[0])
    assert recipients == {
        api.external_id: {"all@example.org", "api@example.org"},
        web.external_id: {"all@example.org", "web@example.org"},
    }
    assert api.detail == "2 accepted, 0 refused of 2; 1 follow other components"
    assert web.detail == "2 accepted, 0 refused of 2; 1 follow other components"


async def test_an_incident_naming_no_component_reaches_every_subscriber(configure: Configure) -> None:
    """Whatever a subscriber follows, an incident about the whole service (no component named) reaches them."""
    subscribers = "email,components\nall@example.org,\napi@example.org,API\n"
    with smtp_server() as server:
        settings = configure(Relay(server.port), subscribers=subscribers)
        async with email_channel(settings) as channel:
            receipt = await channel.send(attempts(components={}, incident_id="inc00000000c").next())
    assert sorted(item.recipients[0] for item in server.recorder.received) == ["all@example.org", "api@example.org"]
    assert receipt.detail == "2 accepted, 0 refused of 2"


async def test_mailing_stops_once_the_time_to_live_has_passed(configure: Configure) -> None:
    """A slow relay: once expires_at passes mid-batch, no further message is started."""
    people = addresses(30)
    with smtp_server(Script(data_delay=0.05)) as server:
        settings = configure(Relay(server.port), subscribers=people, email={"pool_size": 1})
        story = attempts()
        async with email_channel(settings) as channel:
            with pytest.raises(TransientError, match="time-to-live passed mid-batch"):
                await channel.send(story.next(expires_at=time.time() + 0.3))
            sent = len(server.recorder.received)
            with pytest.raises(TransientError, match="time-to-live"):
                await channel.send(story.next(expires_at=time.time() - 1))
    assert 0 < sent < 30
    assert len(server.recorder.received) == sent
    assert list(story.progress.values()) == [""] * sent


async def test_a_relay_refusing_every_recipient_suppresses_nobody(configure: Configure, workdir: Path) -> None:
    """ "550 relaying denied" for all: a relay problem, so the delivery fails and no address is suppressed."""
    people = addresses(40)
    with smtp_server(Script(refuse_every_rcpt="550 5.7.1 Relaying denied")) as server:
        settings = configure(Relay(server.port), subscribers=people)
        async with email_channel(settings) as channel:
            with pytest.raises(PermanentError, match="refusing us, not them"):
                await channel.send(attempts().next())
        assert len(server.recorder.rcpt_seen) < 40
    assert not (workdir / "var" / "email-suppressed.txt").exists()


async def test_bad_subscriber_lines_are_skipped_and_counted(configure: Configure) -> None:
    """Invalid lines do not stop the others; the receipt says how many were skipped."""
    with smtp_server() as server:
        settings = configure(Relay(server.port), subscribers=["ok@example.org", "not-an-address", "two@example.org"])
        async with email_channel(settings) as channel:
            receipt = await channel.send(attempts().next())
    assert sorted(r.recipients[0] for r in server.recorder.received) == ["ok@example.org", "two@example.org"]
    assert receipt.detail == "2 accepted, 0 refused of 2; 1 bad lines in the subscribers file"


async def test_a_missing_subscribers_file_is_transient(configure: Configure, workdir: Path) -> None:
    """Someone may be putting the file back: the lane retries rather than failing the update."""
    with smtp_server() as server:
        settings = configure(Relay(server.port), subscribers=["a@example.org"])
        (workdir / "subscribers.txt").unlink()
        async with email_channel(settings) as channel:
            with pytest.raises(TransientError, match="cannot read subscribers file"):
                await channel.send(attempts().next())
    assert server.recorder.received == []


class Unsubscribed(NoJournal):
    """A journal in which one address has unsubscribed (one click, through the service)."""

    async def suppressed(self) -> frozenset[str]:
        return frozenset({"user0001@example.org"})


async def test_addresses_unsubscribed_through_the_journal_are_not_mailed(configure: Configure) -> None:
    people = addresses(4)
    with smtp_server() as server:
        settings = configure(Relay(server.port), subscribers=people)
        async with email_channel(settings, Unsubscribed()) as channel:
            receipt = await channel.send(attempts().next())
    assert sorted(r.recipients[0] for r in server.recorder.received) == [people[0], *people[2:]]
    assert receipt.detail == "3 accepted, 0 refused of 3; 1 suppressed"
