"""The X channel through the real lanes (Dispatcher, SQLite journal) and the CLI, against the fake X API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.store import Accepted
from broadcaster.store.base import Delivery
from config import Settings
from tests.channels.x.conftest import XConfig
from tests.channels.x.fake_x import (
    HANDLE,
    POST_ROUTE,
    SECRETS,
    FakeX,
    hang,
    html_bad_gateway,
    lose_answer,
    rate_limited,
    status,
)
from tests.support.helpers import eventually, run_cli


class Desk:
    """An incident commander's desk: submits updates and waits for their deliveries."""

    def __init__(self, runtime: Runtime, dispatcher: Dispatcher, channels: list[str]) -> None:
        self.runtime = runtime
        self.dispatcher = dispatcher
        self.channels = channels

    async def submit(self, **fields: Any) -> Accepted:
        accepted = await self.runtime.submit(UpdateDraft(channels=self.channels, **fields))
        self.dispatcher.wake()
        return accepted

    async def deliver(self, wait: float = 20, **fields: Any) -> tuple[Accepted, Delivery]:
        """Submit an update and wait until its X delivery is final."""
        accepted = await self.submit(**fields)
        deliveries = await self.dispatcher.settle([accepted.update.id], wait=wait)
        return accepted, next(d for d in deliveries if d.channel == "x")


@asynccontextmanager
async def desk(settings: Settings, channels: tuple[str, ...] = ("x",)) -> AsyncIterator[Desk]:
    runtime = await open_runtime(settings)
    try:
        async with Dispatcher(runtime, channels=list(channels), poll_interval=0.05) as dispatcher:
            yield Desk(runtime, dispatcher, list(channels))
    finally:
        await runtime.close()


async def test_an_incident_is_one_thread(x_config: XConfig, fake: FakeX) -> None:
    """Three updates: the first stands alone, the second replies to it, the third to the second."""
    async with desk(x_config()) as commander:
        opened, first = await commander.deliver(
            title="API errors", status="investigating", impact="major", message="Error rates are up."
        )
        incident = opened.incident.id
        _, second = await commander.deliver(incident_id=incident, status="identified", message="Bad deploy.")
        _, third = await commander.deliver(incident_id=incident, status="resolved", message="Rolled back.")
    assert [d.state for d in (first, second, third)] == [DeliveryState.DELIVERED] * 3
    assert [post.id for post in fake.posts] == [first.external_id, second.external_id, third.external_id]
    assert [post.reply_to for post in fake.posts] == [None, first.external_id, second.external_id]
    assert [post.text.split("\n")[0] for post in fake.posts] == [
        "Investigating - Major outage: API errors",
        "Identified - Major outage: API errors",
        "Resolved: API errors",
    ]


async def test_a_rate_limited_post_waits_for_the_reset(x_config: XConfig, fake: FakeX) -> None:
    """429: the retry reaches X no earlier than x-rate-limit-reset, then the post is delivered."""
    reset = int(time.time()) + 2
    fake.script(POST_ROUTE, rate_limited(reset))
    async with desk(x_config()) as commander:
        _, delivery = await commander.deliver(title="API errors", status="investigating", message="Looking.")
        attempts = await commander.runtime.store.attempts(delivery.id)
    assert delivery.state is DeliveryState.DELIVERED
    (post,) = fake.posts
    assert post.received_at >= reset
    assert [a.outcome for a in attempts] == ["retry", "delivered"]
    assert attempts[0].error.startswith("X API 429 Too Many Requests; rate limited until")


async def test_a_reset_beyond_the_ttl_expires_the_delivery(x_config: XConfig, fake: FakeX) -> None:
    """A reset an hour away with a 60 s time-to-live: expired at once, never posted, X asked once."""
    fake.script(POST_ROUTE, rate_limited(time.time() + 3600))
    async with desk(x_config(retry={"ttl": 60})) as commander:
        _, delivery = await commander.deliver(title="API errors", status="investigating", message="Looking.")
    assert delivery.state is DeliveryState.EXPIRED
    assert "time-to-live" in delivery.last_error and "429" in delivery.last_error
    assert not fake.posts
    assert len(fake.requests) == 1


async def test_rejected_credentials_fail_the_delivery_with_the_reason(x_config: XConfig, fake: FakeX) -> None:
    """401 after a bad signature: failed on the first attempt; the ledger says why and holds no credential."""
    async with desk(x_config(x={"access_token_secret": "stale-token-secret"})) as commander:
        _, delivery = await commander.deliver(title="API errors", status="investigating", message="Looking.")
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 1)
    assert delivery.last_error == "X API 401 Unauthorized (check the [x] credentials and the app's permissions)"
    for secret in (*SECRETS, "stale-token-secret"):
        assert secret not in delivery.last_error + delivery.detail


async def test_server_errors_are_retried_until_delivered(x_config: XConfig, fake: FakeX) -> None:
    """503 then an HTML 502: two retries recorded with their reasons, then delivered once."""
    fake.script(POST_ROUTE, status(503, "Service Unavailable", "Service Unavailable"), html_bad_gateway())
    async with desk(x_config()) as commander:
        _, delivery = await commander.deliver(title="API errors", status="investigating", message="Looking.")
        attempts = await commander.runtime.store.attempts(delivery.id)
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 3)
    assert [(a.outcome, a.error) for a in attempts] == [
        ("retry", "X API 503 Service Unavailable"),
        ("retry", "X API 502: answer is not JSON (text/html; charset=utf-8)"),
        ("delivered", ""),
    ]
    assert len(fake.posts) == 1


async def test_a_lost_answer_is_delivered_once_and_the_thread_goes_on(x_config: XConfig, fake: FakeX) -> None:
    """Update 2 is posted but its answer lost: the retry's duplicate counts as delivered (no id), and
    update 3 replies to the last post whose id is known."""
    async with desk(x_config()) as commander:
        opened, first = await commander.deliver(title="API errors", status="investigating", message="Looking.")
        fake.script(POST_ROUTE, lose_answer())
        _, second = await commander.deliver(incident_id=opened.incident.id, status="identified", message="Found.")
        _, third = await commander.deliver(incident_id=opened.incident.id, status="resolved", message="Fixed.")
    assert (second.state, second.attempts, second.external_id) == (DeliveryState.DELIVERED, 2, None)
    assert second.detail == "X already has this post: an earlier attempt posted it but its answer was lost"
    assert [post.reply_to for post in fake.posts] == [None, first.external_id, first.external_id]
    assert third.external_id == fake.posts[2].id


async def test_a_hanging_x_api_does_not_delay_the_mirror(x_config: XConfig, fake: FakeX, workdir: Path) -> None:
    """While X holds the post unanswered, the mirror lane writes the incident page; X delivers once freed."""
    fake.script(POST_ROUTE, hang())
    settings = x_config('[mirror]\nenabled = true\ndirectories = ["public"]\n')
    async with desk(settings, ("x", "mirror")) as commander:
        accepted = await commander.submit(title="API errors", status="investigating", message="Looking.")

        async def states() -> dict[str, DeliveryState]:
            return {d.channel: d.state for d in await commander.runtime.store.deliveries(update_id=accepted.update.id)}

        async def mirror_delivered() -> bool:
            return (await states())["mirror"] is DeliveryState.DELIVERED

        await eventually(mirror_delivered)
        assert (await states())["x"] is DeliveryState.IN_FLIGHT
        assert fake.held == 1
        assert (workdir / "public" / "incidents" / f"{accepted.incident.id}.html").is_file()
        fake.release.set()
        deliveries = await commander.dispatcher.settle([accepted.update.id], wait=20)
    assert {d.channel: d.state for d in deliveries} == {"x": DeliveryState.DELIVERED, "mirror": DeliveryState.DELIVERED}


async def test_the_cli_checks_and_posts(x_config: XConfig, fake: FakeX, workdir: Path) -> None:
    """`broadcaster check` names the account without posting; `broadcaster send --channel x` posts, exit 0."""
    x_config()  # writes broadcaster.toml into the working directory
    checked = await asyncio.to_thread(run_cli, "check", "--config", "broadcaster.toml", cwd=workdir)
    assert checked.returncode == 0, checked.stderr
    assert f"ok    x x: @{HANDLE}" in checked.stdout
    assert not fake.posts
    send = ["send", "--config", "broadcaster.toml", "--title", "API errors", "--status", "investigating"]
    sent = await asyncio.to_thread(run_cli, *send, "--message", "Looking into it.", "--channel", "x", cwd=workdir)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert [post.text for post in fake.posts] == ["Investigating - Minor outage: API errors\n\nLooking into it."]
