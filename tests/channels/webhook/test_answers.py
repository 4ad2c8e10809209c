"""How the receiver's answer decides a delivery: delivered, retried, failed, or the target paused."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.runtime import open_runtime
from channels.webhook.answers import BODY_CAP, SNIPPET_CHARS, retry_after_seconds
from tests.channels.webhook.conftest import Configure, broadcasting, post, settle, target
from tests.channels.webhook.receiver import Answer, Receiver
from tests.support.helpers import eventually


@pytest.mark.parametrize(
    ("status", "state", "attempts", "error"),
    [
        (200, DeliveryState.DELIVERED, 1, ""),
        (202, DeliveryState.DELIVERED, 1, ""),
        (400, DeliveryState.FAILED, 1, "HTTP 400 Bad Request: nope (refused: retrying the same request cannot help)"),
        (401, DeliveryState.FAILED, 1, "HTTP 401 Unauthorized: nope (refused"),
        (404, DeliveryState.FAILED, 1, "HTTP 404 Not Found: nope (refused"),
        (408, DeliveryState.FAILED, 3, "gave up after 3 attempts: HTTP 408 Request Timeout: nope"),
        (429, DeliveryState.FAILED, 3, "gave up after 3 attempts: HTTP 429 Too Many Requests: nope"),
        (500, DeliveryState.FAILED, 3, "gave up after 3 attempts: HTTP 500 Internal Server Error: nope"),
        (503, DeliveryState.FAILED, 3, "gave up after 3 attempts: HTTP 503 Service Unavailable: nope"),
        (301, DeliveryState.FAILED, 1, "HTTP 301 Moved Permanently: nope (moved for good to https://new.example"),
        (308, DeliveryState.FAILED, 1, "HTTP 308 Permanent Redirect: nope (moved for good"),
        (
            302,
            DeliveryState.FAILED,
            3,
            "gave up after 3 attempts: HTTP 302 Found: nope (temporary redirect to https://new.example not followed",
        ),
        (307, DeliveryState.FAILED, 3, "gave up after 3 attempts: HTTP 307 Temporary Redirect: nope (temporary"),
    ],
)
async def test_status_codes_are_classified(  # noqa: PLR0917 - two fixtures and the four columns of the table
    configure: Configure, receiver: Receiver, status: int, state: DeliveryState, attempts: int, error: str
) -> None:
    """2xx delivers; 408/429/5xx/temporary redirects retry until out of attempts; other 4xx and 301/308 fail at once."""
    receiver.script("/s", Answer(status, headers={"Location": "https://new.example/secret/path"}, body=b"nope"))
    settings = configure(target(receiver.url("/s")))
    async with broadcasting(settings) as (runtime, dispatcher):
        (delivery,) = (await settle(dispatcher, await post(runtime, dispatcher))).values()
    assert (delivery.state, delivery.attempts) == (state, attempts)
    assert delivery.last_error.startswith(error) if error else delivery.last_error == ""
    assert "secret/path" not in delivery.last_error
    assert len(receiver.at("/s")) == attempts  # a redirect is never followed


async def test_gone_pauses_the_target_until_resumed(configure: Configure, receiver: Receiver) -> None:
    """410 fails the delivery and pauses that target only; a later update waits for resume, then goes out."""
    receiver.script("/gone", Answer(410), Answer(204))
    settings = configure(target(receiver.url("/gone"), name="gone"), target(receiver.url("/fine"), name="fine"))
    async with broadcasting(settings) as (runtime, dispatcher):
        first = await post(runtime, dispatcher)
        deliveries = await settle(dispatcher, first)
        assert deliveries["gone"].state is DeliveryState.FAILED
        assert deliveries["gone"].last_error.startswith("HTTP 410 Gone")
        assert deliveries["fine"].state is DeliveryState.DELIVERED

        second = await post(runtime, dispatcher, incident_id=first.incident.id, status="resolved", message="Fixed.")
        waiting = await settle(dispatcher, second, wait=1)
        assert waiting["gone"].state is DeliveryState.PENDING  # the target is paused
        assert waiting["fine"].state is DeliveryState.DELIVERED
        assert len(receiver.at("/gone")) == 1
        assert [(c.target, c.paused) for c in await runtime.store.controls()] == [("gone", True)]

        # What `broadcaster resume webhook --target gone` does.
        await runtime.store.set_paused("webhook", "gone", paused=False, reason="", now=time.time())

        async def released() -> bool:
            deliveries = {d.target: d for d in await runtime.store.deliveries(update_id=second.update.id)}
            return deliveries["gone"].state is DeliveryState.DELIVERED

        await eventually(released)  # the lane re-reads its controls every poll
    assert len(receiver.at("/gone")) == 2


async def test_retry_after_seconds_is_honoured(configure: Configure, receiver: Receiver) -> None:
    """A 429 with Retry-After: 1 is retried no earlier than a second later."""
    receiver.script("/busy", Answer(429, headers={"Retry-After": "1"}), Answer(200))
    settings = configure(target(receiver.url("/busy")))
    async with broadcasting(settings) as (runtime, dispatcher):
        (delivery,) = (await settle(dispatcher, await post(runtime, dispatcher))).values()
    first, second = receiver.at("/busy")
    assert delivery.state is DeliveryState.DELIVERED
    assert second.at >= first.at + 1.0


async def test_retry_after_http_date_is_honoured(configure: Configure, receiver: Receiver) -> None:
    """A 503 with Retry-After as an HTTP-date is retried no earlier than that date."""
    not_before = int(time.time()) + 2  # HTTP-dates have whole seconds
    receiver.script("/later", Answer(503, headers={"Retry-After": formatdate(not_before, usegmt=True)}), Answer(200))
    settings = configure(target(receiver.url("/later")))
    async with broadcasting(settings) as (runtime, dispatcher):
        (delivery,) = (await settle(dispatcher, await post(runtime, dispatcher))).values()
    assert delivery.state is DeliveryState.DELIVERED
    assert receiver.at("/later")[1].at >= not_before


def test_retry_after_parsing() -> None:
    """Delay-seconds and HTTP-dates are read, never negative and capped; anything else is ignored."""
    now = 1_700_000_000.0
    assert retry_after_seconds("120", now=now) == 120.0
    assert retry_after_seconds(formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert retry_after_seconds(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after_seconds("99999999", now=now) == 86400.0
    for unreadable in (None, "", "-5", "1.5", "soon", "Wed, 21 Oct 2015 07:28:00 -0000"):
        assert retry_after_seconds(unreadable, now=now) is None


async def test_error_quotes_are_capped_clean_and_secret_free(configure: Configure, receiver: Receiver) -> None:
    """A huge error body is read only up to the cap and quoted short, on one line, without any secret or the URL."""
    echo = b"bad token Bearer s3cret-h3ader for /hooks/T0/B0/xyzzy\r\n\x1b[31m" + b"x" * (BODY_CAP * 4)
    receiver.script("/hooks/T0/B0/xyzzy", Answer(400, body=echo))
    settings = configure(target(receiver.url("/hooks/T0/B0/xyzzy"), headers={"Authorization": "Bearer s3cret-h3ader"}))
    async with broadcasting(settings) as (runtime, dispatcher):
        (delivery,) = (await settle(dispatcher, await post(runtime, dispatcher))).values()
    error = delivery.last_error
    assert error.startswith("HTTP 400 Bad Request: bad token ******** for ******** [31mxxx")
    assert "s3cret" not in error and "xyzzy" not in error and "\x1b" not in error and "\n" not in error
    assert len(error) < SNIPPET_CHARS + 100


async def test_a_removed_target_fails_permanently(configure: Configure, receiver: Receiver) -> None:
    """A delivery planned for a target that is no longer configured fails at once, naming the target."""
    before = configure(target(receiver.url("/kept"), name="kept"), target(receiver.url("/dropped"), name="dropped"))
    journal_only = await open_runtime(before)  # journal the update with both targets, deliver nothing yet
    try:
        accepted = await journal_only.submit(UpdateDraft(title="x", status="investigating", message="x"))
    finally:
        await journal_only.close()
    after = configure(target(receiver.url("/kept"), name="kept"))
    async with broadcasting(after) as (_runtime, dispatcher):
        dispatcher.wake()
        deliveries = await settle(dispatcher, accepted)
    assert deliveries["kept"].state is DeliveryState.DELIVERED
    assert (deliveries["dropped"].state, deliveries["dropped"].last_error) == (
        DeliveryState.FAILED,
        "dropped is no longer a configured webhook target",
    )
    assert receiver.at("/dropped") == []
