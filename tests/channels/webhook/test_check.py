"""Preflight (`broadcaster check`) and HTTPS: pings to targets that opt in, connections only for the others,
[network] pins and ca_file honoured."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from standardwebhooks.webhooks import Webhook

from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.runtime import open_runtime
from channels.base import ChannelContext, CheckResult
from channels.webhook import WebhookChannel
from config import Settings
from tests.channels.webhook.conftest import TLS_HOST, Configure, Tls, broadcasting, post, settle, target
from tests.channels.webhook.receiver import Answer, Receiver

SECRET = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


@asynccontextmanager
async def channel(settings: Settings) -> AsyncIterator[WebhookChannel]:
    """The channel as `broadcaster check` builds it: from the settings and an open journal."""
    runtime = await open_runtime(settings)
    webhook = WebhookChannel.create(ChannelContext(settings, runtime.store))
    try:
        yield webhook
    finally:
        await webhook.aclose()
        await runtime.close()


async def check(settings: Settings) -> dict[str, CheckResult]:
    async with channel(settings) as webhook:
        return {result.target: result for result in await webhook.check()}


async def test_opted_in_targets_get_a_signed_ping(configure: Configure, receiver: Receiver) -> None:
    """ping = true: a signed "ping" event (meta and page, no incident) that the receiver must accept."""
    settings = configure(target(receiver.url("/ping"), name="pinged", secret=SECRET, ping=True))
    results = await check(settings)
    assert results["pinged"].ok
    assert results["pinged"].detail.startswith("ping answered HTTP 204 in ")
    (request,) = receiver.at("/ping")
    body = Webhook(SECRET).verify(request.body, request.headers)
    assert set(body) == {"meta", "page"}
    assert (body["meta"]["event"], body["meta"]["update_id"]) == ("ping", None)
    assert body["page"]["status_indicator"] == "none"


async def test_a_refused_ping_fails_the_check(configure: Configure, receiver: Receiver) -> None:
    """A ping answered with a non-2xx status is a failed check that says what came back."""
    receiver.script("/ping", Answer(403, body=b"forbidden"))
    results = await check(configure(target(receiver.url("/ping"), name="refusing", ping=True)))
    assert not results["refusing"].ok
    assert results["refusing"].detail.startswith("HTTP 403 Forbidden: forbidden")


async def test_chat_pings_use_the_service_format(configure: Configure, receiver: Receiver) -> None:
    """A Slack target's ping is a plain Slack message labelled as a connectivity check."""
    await check(configure(target(receiver.url("/slack"), format="slack", ping=True)))
    body = json.loads(receiver.at("/slack")[0].body)
    assert set(body) == {"text"} and body["text"].startswith("Connectivity check from the Example status")


async def test_other_targets_are_only_connected_to(configure: Configure, receiver: Receiver, closed_port: int) -> None:
    """Without ping, the check opens a TCP connection and sends nothing; a closed port fails the check."""
    settings = configure(
        target(receiver.url("/quiet"), name="quiet"), target(f"http://127.0.0.1:{closed_port}/x", name="dead")
    )
    results = await check(settings)
    assert results["quiet"] == CheckResult(
        target="quiet", ok=True, detail=f"TCP connection to 127.0.0.1:{receiver.port} opened; nothing sent"
    )
    assert not results["dead"].ok and results["dead"].detail.startswith(f"cannot connect to 127.0.0.1:{closed_port}")
    assert receiver.received == []


async def test_tls_check_honours_pins_and_the_ca_file(configure: Configure, tls_receiver: Receiver, tls: Tls) -> None:
    """An https target named by host is reached through its pin and its certificate verified with ca_file."""
    pins = f'[network]\nresolve = {{ "{TLS_HOST}" = "127.0.0.1:{tls_receiver.port}" }}\nca_file = "{tls.ca_file}"\n'
    settings = configure(target(f"https://{TLS_HOST}/hook", name="tls"), extra=pins)
    results = await check(settings)
    assert results["tls"] == CheckResult(
        target="tls",
        ok=True,
        detail=f"TLS connection to {TLS_HOST}:443 (pinned to 127.0.0.1:{tls_receiver.port}) opened; nothing sent",
    )
    assert tls_receiver.received == []


async def test_tls_check_fails_without_the_ca(configure: Configure, tls_receiver: Receiver) -> None:
    """Without the private CA, the same certificate is refused and the check says why."""
    pins = f'[network]\nresolve = {{ "{TLS_HOST}" = "127.0.0.1:{tls_receiver.port}" }}\n'
    results = await check(configure(target(f"https://{TLS_HOST}/hook", name="tls"), extra=pins))
    assert not results["tls"].ok
    assert "certificate verify failed" in results["tls"].detail


async def test_https_delivery_through_a_pin(configure: Configure, tls_receiver: Receiver, tls: Tls) -> None:
    """A delivery to an https URL goes to the pinned address and verifies the host's certificate with ca_file."""
    pins = f'[network]\nresolve = {{ "{TLS_HOST}" = "127.0.0.1:{tls_receiver.port}" }}\nca_file = "{tls.ca_file}"\n'
    settings = configure(target(f"https://{TLS_HOST}/hook", name="tls"), extra=pins)
    async with broadcasting(settings) as (runtime, dispatcher):
        deliveries = await settle(dispatcher, await post(runtime, dispatcher))
    assert deliveries["tls"].state is DeliveryState.DELIVERED
    assert tls_receiver.at("/hook")[0].headers["host"] == TLS_HOST


async def test_https_delivery_with_an_untrusted_certificate_is_retried(
    configure: Configure, tls_receiver: Receiver
) -> None:
    """Without the CA the delivery is never sent in clear or unverified: it fails as a TLS trust error."""
    pins = f'[network]\nresolve = {{ "{TLS_HOST}" = "127.0.0.1:{tls_receiver.port}" }}\n'
    settings = configure(target(f"https://{TLS_HOST}/hook", name="tls"), extra=pins)
    async with broadcasting(settings) as (runtime, dispatcher):
        deliveries = await settle(dispatcher, await post(runtime, dispatcher))
    assert deliveries["tls"].state is DeliveryState.FAILED
    assert deliveries["tls"].last_error.startswith(
        f"gave up after 3 attempts: TLS certificate of {TLS_HOST} not trusted"
    )
    assert tls_receiver.received == []
