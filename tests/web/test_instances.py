"""Two `broadcaster serve` instances, separate processes, on one real redis-server: a 2,000-target fan-out is
split between them with no delivery made twice, and when one is killed (SIGKILL) mid-fan-out the other
finishes the work; and each keeps its own status site current. Both run on this machine, so the survivor's
sweep sees the killed one's pid gone and takes its leases back at once; between machines it waits for them to
run out, which tests/store/test_redis.py shows at the store (a lease recovered by another process once it ran
out)."""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest

from tests.conftest import WriteConfig
from tests.support.helpers import eventually
from tests.support.receivers import UpdateReceiver
from tests.support.serve import ServeProcess, serve_processes

TARGETS: Final = 2000
TOKEN: Final = "instances-token-5e2a"


@pytest.fixture
async def receiver() -> AsyncIterator[UpdateReceiver]:
    started = UpdateReceiver(delay=0.05)
    await started.start()
    yield started
    await started.stop()


async def delivered(instance: ServeProcess, session: aiohttp.ClientSession) -> float:
    """Webhook deliveries `instance` made, from its /metrics."""
    async with session.get(f"{instance.base}/metrics") as answer:
        text = await answer.text()
    found = re.search(r'^broadcaster_deliveries_total\{channel="webhook",outcome="delivered"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def configure(write_config: WriteConfig, redis_url: str, receiver: UpdateReceiver, *, lease: float) -> None:
    targets = "".join(
        f'[[webhook.targets]]\nurl = "http://127.0.0.1:{receiver.port}/t/{n}"\nname = "t{n}"\n' for n in range(TARGETS)
    )
    write_config(
        f'[store]\nurl = "{redis_url}"\n[service]\nsweep_interval = 1\nlease = {lease}\n'
        f'[auth]\napi_tokens = {{ bench = "{TOKEN}" }}\n[mirror]\nenabled = false\n'
        f"[retry.webhook]\nconcurrency = 32\n[webhook]\nenabled = true\n{targets}"
    )


async def post_update(session: aiohttp.ClientSession, base: str) -> str:
    accepted = await post(
        session, base, title="Checkout errors", status="investigating", message="Some card payments fail."
    )
    update_id: str = accepted["update_id"]
    return update_id


async def test_a_fan_out_is_split_between_two_instances_and_nothing_is_sent_twice(
    workdir: Path, write_config: WriteConfig, redis_url: str, receiver: UpdateReceiver
) -> None:
    configure(write_config, redis_url, receiver, lease=30)
    async with serve_processes(workdir, 2) as (first, second), aiohttp.ClientSession() as session:
        await post_update(session, first.base)

        shares: list[float] = []

        async def done() -> bool:  # every delivery received, and recorded by one instance or the other
            shares[:] = [await delivered(first, session), await delivered(second, session)]
            return len(receiver.hits) == TARGETS and sum(shares) == TARGETS

        await eventually(done, within=120, every=0.2)
    assert max(receiver.hits.values()) == 1, [n for n, hits in receiver.hits.items() if hits > 1][:10]
    assert min(shares) > 0, shares  # the accepting instance did not keep the whole fan-out


async def test_when_one_instance_is_killed_the_other_takes_its_leases_back_and_finishes(
    workdir: Path, write_config: WriteConfig, redis_url: str, receiver: UpdateReceiver
) -> None:
    configure(write_config, redis_url, receiver, lease=3)
    async with serve_processes(workdir, 2) as (first, second), aiohttp.ClientSession() as session:
        await post_update(session, first.base)

        async def started() -> bool:
            return len(receiver.hits) >= 200

        await eventually(started, within=60, every=0.01)
        first.process.send_signal(signal.SIGKILL)
        await first.process.wait()

        async def done() -> bool:
            return len(receiver.hits) == TARGETS

        await eventually(done, within=120, every=0.1)
        assert await delivered(second, session) > 0
    # At most what the killed instance had in flight is sent again (at-least-once): never a second round.
    repeated = sum(hits - 1 for hits in receiver.hits.values())
    assert repeated <= 2 * 32, repeated


async def test_each_instance_keeps_its_own_status_site_current(workdir: Path, redis_url: str) -> None:
    """Two hosts, each with its own ./public: whichever instance makes an update's mirror delivery, the update
    shows on both sites, from either host."""
    hosts = [workdir / "host-a", workdir / "host-b"]
    for host in hosts:
        host.mkdir()
        (host / "broadcaster.toml").write_text(
            f'[store]\nurl = "{redis_url}"\n[auth]\napi_tokens = {{ bench = "{TOKEN}" }}\n'
        )
    incident_pages = [host / "public" / "incidents" for host in hosts]

    def every_site_shows(text: str) -> Callable[[], Awaitable[bool]]:
        async def shown() -> bool:
            pages = [page for directory in incident_pages if directory.is_dir() for page in directory.iterdir()]
            return len(pages) == len(hosts) and all(text in page.read_text() for page in pages)

        return shown

    async with (
        serve_processes(hosts[0]) as [first],
        serve_processes(hosts[1]) as [second],
        aiohttp.ClientSession() as session,
    ):
        opened = await post(session, first.base, title="Checkout errors", status="investigating", message="Failing.")
        await eventually(every_site_shows("Failing."), within=30)
        incident_id = opened["incident_id"]
        await post(session, second.base, incident_id=incident_id, status="resolved", message="Payments work again.")
        await eventually(every_site_shows("Payments work again."), within=30)


async def post(session: aiohttp.ClientSession, base: str, **body: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with session.post(f"{base}/api/v1/updates", json=body, headers=headers) as answer:
        assert answer.status == 202, await answer.text()
        accepted: dict[str, Any] = await answer.json()
    return accepted
