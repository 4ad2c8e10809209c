"""The live ledger over HTTP: every delivery and attempt, a reload without JavaScript only while something
is on its way, server-sent events for each change (this process's lanes' and other processes'), and the
operator's buttons behind the CSRF token."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import ClientResponse

from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import DeliveryState, Ordering, Status
from broadcaster.store import open_store
from broadcaster.web.keys import DISPATCHER
from tests.support.channels import deliver, fail_permanently
from tests.support.helpers import eventually
from tests.support.journal import first_attempt
from tests.web.pages.conftest import USER, Commander, OpenCommander, hold

REFRESH = '<noscript><meta http-equiv="refresh" content="5"></noscript>'


async def post_update(commander: Commander, **fields: Any) -> str:
    draft = UpdateDraft(
        title="Checkout errors", status=Status.INVESTIGATING, message="Some fail.", author=USER, **fields
    )
    accepted = await commander.runtime.submit(draft)
    return accepted.update.id


async def states(commander: Commander, update_id: str) -> dict[str, DeliveryState]:
    return {f"{d.channel}:{d.target}": d.state for d in await commander.runtime.store.deliveries(update_id=update_id)}


async def stop_lanes_here(commander: Commander) -> None:
    """Nothing in this process delivers anything: its lanes are stopped (a pause would hold another process's
    claims as well)."""
    await commander.client.app[DISPATCHER].stop()


async def next_event(stream: ClientResponse) -> dict[str, Any]:
    """The next `delivery` event's data (comments and the retry line skipped)."""
    kind, data = "", ""
    async with asyncio.timeout(10):
        while True:
            line = (await stream.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif not line and kind == "delivery":
                parsed: dict[str, Any] = json.loads(data)
                return parsed


async def test_the_ledger_shows_each_delivery_and_reloads_without_javascript_only_while_one_is_pending(
    commander: Commander,
) -> None:
    release = asyncio.Event()
    commander.script.behave = hold(release)
    update_id = await post_update(commander, components={"Checkout": "partial_outage"})
    await commander.log_in()
    pending = await (await commander.client.get(f"/updates/{update_id}")).text()
    assert REFRESH in pending
    assert f"<dt>Author</dt><dd>{USER}</dd>" in pending
    assert "Checkout: Partial outage" in pending
    release.set()

    async def all_delivered() -> bool:
        return set((await states(commander, update_id)).values()) == {DeliveryState.DELIVERED}

    await eventually(all_delivered)
    final = await (await commander.client.get(f"/updates/{update_id}")).text()
    assert "http-equiv" not in final
    assert "Every delivery is final." in final
    for delivery in await commander.runtime.store.deliveries(update_id=update_id):
        row = final.split(f'<tr id="delivery-{delivery.id}" data-final="true">')[1].split("</tr>")[0]
        assert '<span class="state state-delivered" data-field="state">delivered</span>' in row
        assert f"1/{delivery.max_attempts}" in row
        assert '<li data-number="1">#1 delivered' in row
        assert delivery.detail and delivery.detail in row


async def test_the_event_stream_sends_a_deliverys_change(commander: Commander) -> None:
    release = asyncio.Event()
    commander.script.behave = hold(release)
    update_id = await post_update(commander)
    assert (await commander.client.get(f"/updates/{update_id}/events")).status == 401  # not signed in
    await commander.log_in()
    async with commander.client.get(f"/updates/{update_id}/events") as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream"
        deliveries = {d.id: d for d in await commander.runtime.store.deliveries(update_id=update_id)}
        first = [await next_event(stream) for _ in deliveries]  # the journal's state, one per delivery
        assert {event["id"] for event in first} == set(deliveries)
        scripted = {d.id for d in deliveries.values() if d.channel == "scripted"}
        assert all(not event["final"] for event in first if event["id"] in scripted)
        release.set()
        delivered: set[str] = set()
        while delivered != scripted:
            event = await next_event(stream)
            if event["id"] in scripted and event["state"] == "delivered":
                assert event["final"] is True
                assert event["attempt"]["outcome"] == "delivered"
                assert event["note"].startswith("ok attempt 1")
                delivered.add(event["id"])


async def test_retrying_and_pausing_need_the_csrf_token_and_then_act(commander: Commander) -> None:
    commander.script.behave = fail_permanently("the far end refused it")
    update_id = await post_update(commander)

    async def failed() -> bool:
        found = await states(commander, update_id)
        return found["scripted:a"] is found["scripted:b"] is DeliveryState.FAILED

    await eventually(failed)
    await commander.log_in()
    ledger = f"/updates/{update_id}"
    html = await (await commander.client.get(ledger)).text()
    assert "the far end refused it" in html
    assert "Retry 2 failed deliveries" in html
    csrf = (await commander.form_tokens(ledger))["csrf"]
    commander.script.behave = deliver

    refused = await commander.client.post(f"{ledger}/retry", data={"csrf": "wrong"}, allow_redirects=False)
    assert refused.status == 403
    # A requeue would be journaled before the answer (pending, or already further): still failed, so none was.
    after = await states(commander, update_id)
    assert after["scripted:a"] is after["scripted:b"] is DeliveryState.FAILED

    retried = await commander.client.post(f"{ledger}/retry", data={"csrf": csrf}, allow_redirects=False)
    assert (retried.status, retried.headers["Location"]) == (303, f"{ledger}?requeued=2&too_old=0")

    async def delivered() -> bool:
        return (await states(commander, update_id))["scripted:a"] is DeliveryState.DELIVERED

    await eventually(delivered)
    assert (
        "2 failed deliveries back in the queue"
        in await (await commander.client.get(retried.headers["Location"])).text()
    )

    target = {"channel": "scripted", "target": "b"}
    assert (await commander.client.post(f"{ledger}/pause", data=target, allow_redirects=False)).status == 403
    assert await commander.runtime.store.controls() == []
    paused = await commander.client.post(f"{ledger}/pause", data={**target, "csrf": csrf}, allow_redirects=False)
    assert paused.status == 303
    [control] = await commander.runtime.store.controls()
    assert (control.channel, control.target, control.paused) == ("scripted", "b", True)
    assert control.reason == f"by {USER} from the ledger"
    html = await (await commander.client.get(ledger)).text()
    assert f"Paused: by {USER} from the ledger" in html
    assert 'aria-label="Resume scripted target b"' in html
    await commander.client.post(f"{ledger}/resume", data={**target, "csrf": csrf})
    assert not any(control.paused for control in await commander.runtime.store.controls())
    unknown = await commander.client.post(f"{ledger}/pause", data={"channel": "nope", "csrf": csrf})
    assert unknown.status == 404


async def test_an_overdue_incident_is_shown_on_its_ledger(commander: Commander) -> None:
    update_id = await post_update(commander, next_update_at=datetime.now(UTC) + timedelta(hours=1))
    await commander.log_in()
    assert "Overdue" not in await (await commander.client.get(f"/updates/{update_id}")).text()
    commander.runtime.clock = lambda: time.time() + 2 * 3600  # the service's clock, two hours on
    assert "<strong>Overdue:</strong>" in await (await commander.client.get(f"/updates/{update_id}")).text()


async def test_an_unknown_update_is_a_404_page(commander: Commander) -> None:
    await commander.log_in()
    for update_id in ("0123456789ab", "not-an-id"):
        missing = await commander.client.get(f"/updates/{update_id}")
        assert missing.status == 404
        assert "No such update" in await missing.text()


async def test_pausing_from_the_ledger_of_an_unknown_update_is_a_404(commander: Commander) -> None:
    await commander.log_in()
    csrf = (await commander.form_tokens())["csrf"]
    for update_id in ("0123456789ab", "not-an-id", "..%2F..%2Fadmin"):
        for action in ("pause", "resume"):
            answer = await commander.client.post(
                f"/updates/{update_id}/{action}", data={"channel": "scripted", "csrf": csrf}, allow_redirects=False
            )
            assert answer.status == 404, (update_id, action)
            assert "No such update" in await answer.text()
    assert await commander.runtime.store.controls() == []


async def test_an_error_on_the_ledger_never_shows_a_secret(open_commander: OpenCommander) -> None:
    secret = "t0ken-deploy-bot-5c1a9e"
    async with open_commander(f'[auth]\napi_tokens = {{ deploy-bot = "{secret}" }}\n') as commander:
        update_id = await post_update(commander)
        await commander.log_in()
        ledger = f"/updates/{update_id}"
        csrf = (await commander.form_tokens(ledger))["csrf"]
        refused = await commander.client.post(
            f"{ledger}/pause", data={"channel": "scripted", "target": secret, "csrf": csrf}, allow_redirects=False
        )
        assert refused.status == 404
        html = await refused.text()
        assert "scripted has no target" in html
        assert secret not in html


async def test_a_delivery_made_by_another_process_reaches_the_stream(commander: Commander) -> None:
    """Not through this process's lanes (stopped here): another store connection, as `broadcaster send`
    elsewhere would, leases and delivers them; the stream reads it from the journal."""
    store = commander.runtime.store
    await stop_lanes_here(commander)
    update_id = await post_update(commander)
    await commander.log_in()
    elsewhere = open_store(commander.runtime.settings.store_url)
    await elsewhere.open()
    try:
        async with commander.client.get(f"/updates/{update_id}/events") as stream:
            deliveries = await store.deliveries(update_id=update_id)
            first = [await next_event(stream) for _ in deliveries]
            scripted = {d.id for d in deliveries if d.channel == "scripted"}
            assert all(not event["final"] for event in first if event["id"] in scripted)
            leased = await elsewhere.claim(
                "scripted", ordering=Ordering.IN_ORDER, owner="another-process", limit=10, now=time.time(), lease=60
            )
            assert {claimed.delivery.id for claimed in leased.claimed} == scripted
            now = time.time()
            outcomes = [first_attempt(delivery_id, DeliveryState.DELIVERED, at=now) for delivery_id in scripted]
            assert await elsewhere.finish("another-process", outcomes) == len(scripted)
            delivered: set[str] = set()
            while delivered != scripted:
                event = await next_event(stream)
                if event["id"] in scripted and event["state"] == "delivered":
                    assert event["final"] is True
                    assert [line["outcome"] for line in event["log"]] == ["delivered"]
                    delivered.add(event["id"])
    finally:
        await elsewhere.close()
