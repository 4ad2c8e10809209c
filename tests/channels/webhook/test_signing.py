"""Standard Webhooks signatures, checked by the standardwebhooks package on a real receiver."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from broadcaster.domain.vocabulary import DeliveryState
from channels.webhook.signing import Signer, sign
from tests.channels.webhook.conftest import Configure, broadcasting, post, settle, target
from tests.channels.webhook.receiver import Answer, Receiver

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


async def test_whsec_signatures_verify_with_the_reference_library(configure: Configure, receiver: Receiver) -> None:
    """A whsec_ secret signs each delivery so that standardwebhooks' Webhook(secret).verify accepts it."""
    settings = configure(target(receiver.url("/signed"), secret=WHSEC))
    async with broadcasting(settings) as (runtime, dispatcher):
        accepted = await post(runtime, dispatcher)
        deliveries = await settle(dispatcher, accepted)
    assert [d.state for d in deliveries.values()] == [DeliveryState.DELIVERED]
    (request,) = receiver.at("/signed")
    payload = Webhook(WHSEC).verify(request.body, request.headers)
    assert payload["meta"]["update_id"] == accepted.update.id
    assert request.headers["webhook-id"] == "msg_" + accepted.deliveries[0].id
    assert request.headers["webhook-timestamp"].isdigit()


async def test_plain_secrets_sign_with_their_utf8_bytes(configure: Configure, receiver: Receiver) -> None:
    """A secret without the whsec_ prefix is the HMAC key as UTF-8 bytes: Webhook(secret.encode()) verifies it."""
    plain = "correct horse battery staple ✓"
    settings = configure(target(receiver.url("/plain"), secret=plain))
    async with broadcasting(settings) as (runtime, dispatcher):
        await settle(dispatcher, await post(runtime, dispatcher))
    (request,) = receiver.at("/plain")
    assert Webhook(plain.encode()).verify(request.body, request.headers)["meta"]["event"] == "incident.update"
    with pytest.raises(WebhookVerificationError):
        Webhook(b"another secret").verify(request.body, request.headers)


async def test_no_secret_sends_no_signature(configure: Configure, receiver: Receiver) -> None:
    """Without a secret the delivery carries webhook-id and webhook-timestamp but no webhook-signature."""
    settings = configure(target(receiver.url("/unsigned")))
    async with broadcasting(settings) as (runtime, dispatcher):
        await settle(dispatcher, await post(runtime, dispatcher))
    (request,) = receiver.at("/unsigned")
    assert set(request.standard_headers()) == {"webhook-id", "webhook-timestamp"}


async def test_retries_keep_the_webhook_id_and_re_sign(configure: Configure, receiver: Receiver) -> None:
    """Every retry of a delivery carries the same webhook-id, and each attempt's signature verifies."""
    receiver.script("/flaky", Answer(503), Answer(500), Answer(200))
    settings = configure(target(receiver.url("/flaky"), secret=WHSEC))
    async with broadcasting(settings) as (runtime, dispatcher):
        accepted = await post(runtime, dispatcher)
        (delivery,) = (await settle(dispatcher, accepted)).values()
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 3)
    requests = receiver.at("/flaky")
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {"msg_" + delivery.id}
    for request in requests:
        Webhook(WHSEC).verify(request.body, request.headers)
    assert delivery.external_id == "msg_" + delivery.id


async def test_second_update_gets_its_own_webhook_id(configure: Configure, receiver: Receiver) -> None:
    """Two updates to one target are two messages: distinct webhook-ids, delivered in order."""
    settings = configure(target(receiver.url("/two"), secret=WHSEC))
    async with broadcasting(settings) as (runtime, dispatcher):
        first = await post(runtime, dispatcher)
        second = await post(runtime, dispatcher, incident_id=first.incident.id, status="identified", message="Found.")
        await settle(dispatcher, second)
    ids = [r.headers["webhook-id"] for r in receiver.at("/two")]
    assert ids == ["msg_" + first.deliveries[0].id, "msg_" + second.deliveries[0].id]
    bodies = [Webhook(WHSEC).verify(r.body, r.headers) for r in receiver.at("/two")]
    assert [b["meta"]["update_id"] for b in bodies] == [first.update.id, second.update.id]


def test_sign_matches_the_reference_signer() -> None:
    """sign() produces exactly the reference library's signature for the same id, timestamp and body."""
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    now = int(time.time())
    body = '{"a":"ü"}'
    expected = Webhook(WHSEC).sign("msg_abc", datetime.fromtimestamp(now, UTC), body)
    assert sign(key, "msg_abc", now, body.encode()) == expected


def test_one_signer_signs_message_after_message() -> None:
    """A target's Signer is reused for every request: each signature must still be the reference one, so
    nothing of one message may carry over into the next."""
    signer = Signer(base64.b64decode(WHSEC.removeprefix("whsec_")))
    now = int(time.time())
    for msg_id, body in [("msg_one", '{"n":1}'), ("msg_two", '{"n":2}'), ("msg_one", '{"n":1}')]:
        expected = Webhook(WHSEC).sign(msg_id, datetime.fromtimestamp(now, UTC), body)
        assert signer.sign(msg_id, now, body.encode()) == expected
