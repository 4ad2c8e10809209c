"""Relays: STARTTLS with a test CA, AUTH, pinned addresses, fallback relays and the preflight check."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from channels.base import PermanentError, TransientError
from tests.channels.email.conftest import FALLBACK_HOSTNAME, PASSWORD, Configure, Relay, email_channel
from tests.channels.email.jobs import attempts
from tests.channels.email.smtp_server import HOSTNAME, Script, closed_port, smtp_server

PEOPLE = [f"reader{n}@example.org" for n in range(8)]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_and_auth_through_a_pinned_name(
    configure: Configure, server_tls: ssl.SSLContext, security: str
) -> None:
    """The relay's name is pinned to 127.0.0.1; STARTTLS (or TLS from the first byte) verifies that name
    against the test CA; AUTH succeeds over the encrypted connection."""
    starttls, implicit = (server_tls, None) if security == "starttls" else (None, server_tls)
    with smtp_server(tls=starttls, implicit_tls=implicit, credentials=("broadcaster", PASSWORD)) as server:
        relay = Relay(server.port, security=security, username="broadcaster", password=PASSWORD)
        settings = configure(relay, subscribers=PEOPLE)
        async with email_channel(settings) as channel:
            receipt = await channel.send(attempts().next())
    assert receipt.detail == "8 accepted, 0 refused of 8"
    assert {(r.over_tls, r.authenticated_as) for r in server.recorder.received} == {(True, "broadcaster")}


async def test_rejected_credentials_are_permanent_and_never_quoted(
    configure: Configure, server_tls: ssl.SSLContext
) -> None:
    """535 at AUTH with no fallback: the delivery fails for good, and the error names no password."""
    with smtp_server(tls=server_tls, credentials=("broadcaster", PASSWORD)) as server:
        relay = Relay(server.port, security="starttls", username="broadcaster", password="wrong-password-1")
        settings = configure(relay, subscribers=PEOPLE)
        async with email_channel(settings) as channel:
            with pytest.raises(PermanentError, match="authentication refused \\(535") as refused:
                await channel.send(attempts().next())
    assert "wrong-password-1" not in str(refused.value)
    assert server.recorder.received == []


async def test_the_fallback_relay_takes_over_when_the_primary_refuses_connections(configure: Configure) -> None:
    """Connection refused by the primary: every message goes out through the first fallback relay."""
    with smtp_server() as fallback:
        settings = configure(Relay(closed_port()), Relay(fallback.port, host=FALLBACK_HOSTNAME), subscribers=PEOPLE)
        async with email_channel(settings) as channel:
            receipt = await channel.send(attempts().next())
    assert receipt.detail == "8 accepted, 0 refused of 8"
    assert sorted(r.recipients[0] for r in fallback.recorder.received) == sorted(PEOPLE)


async def test_the_fallback_relay_takes_over_when_the_primary_refuses_us(
    configure: Configure, server_tls: ssl.SSLContext
) -> None:
    """The primary rejects our credentials; the fallback (its own credentials) delivers everything."""
    with (
        smtp_server(tls=server_tls, credentials=("broadcaster", "rotated-elsewhere")) as primary,
        smtp_server(tls=server_tls, credentials=("backup", PASSWORD)) as fallback,
    ):
        settings = configure(
            Relay(primary.port, security="starttls", username="broadcaster", password=PASSWORD),
            Relay(fallback.port, security="starttls", host=FALLBACK_HOSTNAME, username="backup", password=PASSWORD),
            subscribers=PEOPLE,
        )
        async with email_channel(settings) as channel:
            receipt = await channel.send(attempts().next())
    assert receipt.detail == "8 accepted, 0 refused of 8"
    assert primary.recorder.received == []
    assert {r.authenticated_as for r in fallback.recorder.received} == {"backup"}


async def test_a_relay_refusing_our_sender_hands_over_to_the_fallback(configure: Configure) -> None:
    """553 to MAIL FROM is the relay refusing us, not a recipient: the fallback carries every message."""
    with smtp_server(Script(refuse_sender="553 5.7.1 Sender not allowed")) as primary, smtp_server() as fallback:
        settings = configure(Relay(primary.port), Relay(fallback.port, host=FALLBACK_HOSTNAME), subscribers=PEOPLE)
        async with email_channel(settings) as channel:
            receipt = await channel.send(attempts().next())
    assert receipt.detail == "8 accepted, 0 refused of 8"
    assert sorted(r.recipients[0] for r in fallback.recorder.received) == sorted(PEOPLE)
    assert primary.recorder.rcpt_seen == []


async def test_a_sender_refused_everywhere_fails_the_delivery(configure: Configure, workdir: Path) -> None:
    """With no relay taking our sender the delivery fails for good, and no subscriber is suppressed."""
    with smtp_server(Script(refuse_sender="553 5.7.1 Sender not allowed")) as server:
        settings = configure(Relay(server.port), subscribers=PEOPLE)
        async with email_channel(settings) as channel:
            with pytest.raises(PermanentError, match="no relay would take the mail: sender refused \\(553"):
                await channel.send(attempts().next())
    assert not (workdir / "var" / "email-suppressed.txt").exists()


async def test_an_unreachable_relay_without_fallback_is_transient(configure: Configure) -> None:
    """Nobody answers: worth retrying later, and nothing was marked as done."""
    settings = configure(Relay(closed_port()), subscribers=PEOPLE)
    story = attempts()
    async with email_channel(settings) as channel:
        with pytest.raises(TransientError, match="8 left for a later attempt \\(not tried x 8\\)") as failed:
            await channel.send(story.next())
    assert "unreachable" in str(failed.value)
    assert story.progress == {}


async def test_starttls_is_never_skipped_when_the_relay_does_not_offer_it(configure: Configure) -> None:
    """security = "starttls" against a plain server: refused, nothing sent in clear."""
    with smtp_server() as server:
        settings = configure(Relay(server.port, security="starttls"), subscribers=PEOPLE)
        async with email_channel(settings) as channel:
            with pytest.raises(PermanentError, match="STARTTLS"):
                await channel.send(attempts().next())
    assert server.recorder.received == []


async def test_an_untrusted_certificate_is_refused(configure: Configure, server_tls: ssl.SSLContext) -> None:
    """Without the test CA in [network] ca_file the relay's certificate does not verify: permanent."""
    with smtp_server(tls=server_tls) as server:
        settings = configure(Relay(server.port, security="starttls"), subscribers=PEOPLE, trust_test_ca=False)
        async with email_channel(settings) as channel:
            with pytest.raises(PermanentError, match="TLS certificate not trusted"):
                await channel.send(attempts().next())
    assert server.recorder.received == []


async def test_check_connects_and_authenticates_against_every_relay_sending_nothing(
    configure: Configure, server_tls: ssl.SSLContext
) -> None:
    """One result per relay (the dead one reported as such) plus the subscribers file; no message sent."""
    dead = closed_port()
    with smtp_server(tls=server_tls, credentials=("broadcaster", PASSWORD)) as server:
        settings = configure(
            Relay(dead),
            Relay(server.port, security="starttls", host=FALLBACK_HOSTNAME, username="broadcaster", password=PASSWORD),
            subscribers=[*PEOPLE, "broken"],
        )
        async with email_channel(settings) as channel:
            results = await channel.check()
    assert [(r.target, r.ok) for r in results] == [
        (f"{HOSTNAME}:{dead}", False),
        (f"{FALLBACK_HOSTNAME}:{server.port}", True),
        ("subscribers", True),
    ]
    assert "unreachable" in results[0].detail
    assert results[1].detail == "connected, EHLO, STARTTLS, AUTH as broadcaster accepted; nothing sent"
    assert (
        results[2].detail == "8 subscribers (0 suppressed); 1 bad lines, first line 9: 'broken' is not an email address"
    )
    assert server.recorder.received == [] and server.recorder.rcpt_seen == []
