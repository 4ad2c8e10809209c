"""Redis stopped mid-fan-out under two `broadcaster serve` instances (separate processes, one persistent
redis-server stopped and started again on its port): updates posted meanwhile are accepted (202) and
delivered from each instance's local replica, /readyz and /metrics say the instance runs degraded, and once
Redis is back every instance takes its work back: the ledger in Redis holds every update with its ids and
every delivery delivered, and no target received any update twice."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Final

import aiohttp
import pytest

from broadcaster.store.redis import RedisStore
from tests.conftest import WriteConfig
from tests.support.helpers import cli_env, eventually
from tests.support.receivers import UpdateReceiver
from tests.support.redis import RedisServer
from tests.support.serve import ServeProcess, serve_processes

TARGETS: Final = 300
TOKEN: Final = "outage-token-81c4"


@pytest.fixture
async def receiver() -> AsyncIterator[UpdateReceiver]:
    started = UpdateReceiver(delay=0.01, slow_delay=0.25)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
def redis_alone() -> Iterator[RedisServer]:
    server = RedisServer(persistent=True).start()
    yield server
    server.close()


async def post(session: aiohttp.ClientSession, base: str, body: dict[str, Any]) -> dict[str, Any]:
    async with session.post(f"{base}/api/v1/updates", json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as got:
        assert got.status == 202, await got.text()
        answer: dict[str, Any] = await got.json()
    return answer


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with session.get(url, headers=headers) as got:
        return got.status, (await got.json() if got.content_type == "application/json" else await got.text())


def replicas_hold(data_dir: Path, incident_id: str) -> bool:
    """Every instance's replica holds the incident (the copy each keeps while Redis answers)."""
    found = sorted(data_dir.glob("replica*.db"))
    if len(found) != 2:
        return False
    for path in found:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            if not conn.execute("SELECT 1 FROM incidents WHERE id = ?", (incident_id,)).fetchone():
                return False
    return True


async def test_with_redis_stopped_mid_fan_out_updates_go_out_and_the_ledger_reconciles(
    workdir: Path, write_config: WriteConfig, redis_alone: RedisServer, receiver: UpdateReceiver
) -> None:
    targets = "".join(
        f'[[webhook.targets]]\nurl = "http://127.0.0.1:{receiver.port}/t/{n}"\nname = "t{n}"\n' for n in range(TARGETS)
    )
    write_config(
        f'[store]\nurl = "{redis_alone.url}"\n[service]\nsweep_interval = 1\nlease = 60\n'
        f'[auth]\napi_tokens = {{ ops = "{TOKEN}" }}\n[mirror]\nenabled = false\n'
        f"[retry.webhook]\nconcurrency = 4\n[webhook]\nenabled = true\n{targets}"
    )
    async with serve_processes(workdir, 2) as (first, second), aiohttp.ClientSession() as session:
        opened = await post(
            session,
            first.base,
            {"title": "Checkout errors", "status": "investigating", "message": "Card payments fail."},
        )
        receiver.slow = opened["update_id"]
        await eventually(lambda: asyncio.to_thread(replicas_hold, workdir / "var", opened["incident_id"]), within=30)
        await eventually(lambda: _true(receiver.reached(opened["update_id"]) >= 20), within=30, every=0.01)
        redis_alone.stop()

        follow_up = await post(
            session,
            first.base,
            {"incident_id": opened["incident_id"], "status": "identified", "message": "A bad deploy; rolling back."},
        )
        elsewhere = await post(
            session, second.base, {"title": "Login slow", "status": "investigating", "message": "Logins take 30 s."}
        )
        # Sent while Redis is down, each from the instance that accepted it.
        await eventually(lambda: _true(receiver.reached(follow_up["update_id"]) == TARGETS), within=60, every=0.1)
        await eventually(lambda: _true(receiver.reached(elsewhere["update_id"]) == TARGETS), within=60, every=0.1)
        status, ready = await get(session, f"{first.base}/readyz")
        assert status == 200 and ready["store"]["degraded"] is True, ready
        assert "cannot reach Redis" in ready["store"]["reason"]
        assert ready["store"]["accepted_updates"] == 1  # the follow-up, waiting to go back
        async with session.post(
            f"{first.base}/api/v1/retry", json={}, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as refused:  # requeueing failed deliveries is Redis's to do
            assert refused.status == 503
            assert "the shared journal (Redis) is out of reach, so this was not done" in (await refused.json())["error"]
        assert await degraded_gauge(session, second) == 1.0
        code, said = await status_command(workdir)
        assert code == 4 and said.count("Degraded: the service keeping") == 2, said
        assert said.count("1 update(s) it accepted meanwhile") == 2, said
        assert receiver.reached(opened["update_id"]) < TARGETS  # the rest waits in Redis for Redis

        redis_alone.start(again=True)

        async def reconciled() -> bool:
            return all(receiver.reached(u["update_id"]) == TARGETS for u in (opened, follow_up, elsewhere))

        await eventually(reconciled, within=120, every=0.2)
        for instance in (first, second):
            await eventually(partial(_not_degraded, session, instance), within=30, every=0.2)
        ledger: dict[str, Counter[str]] = {}

        # The ledger, as Redis holds it (the last attempts end after their requests arrive).
        async def all_delivered() -> bool:
            for accepted in (opened, follow_up, elsewhere):
                status, update = await get(session, f"{second.base}/api/v1/updates/{accepted['update_id']}")
                assert status == 200, update
                ledger[accepted["update_id"]] = Counter(d["state"] for d in update["deliveries"])
            return all(states == {"delivered": TARGETS} for states in ledger.values())

        try:
            await eventually(all_delivered, within=30, every=0.2)
        except AssertionError:
            raise AssertionError(ledger) from None
        status, incident = await get(session, f"{first.base}/api/v1/incidents/{opened['incident_id']}")
        assert [(u["update_id"], u["seq"]) for u in incident["updates"]] == [
            (opened["update_id"], 1),
            (follow_up["update_id"], 2),
        ]
        assert incident["status"] == "identified"
    repeated = {key: hits for key, hits in receiver.hits.items() if hits > 1}
    assert not repeated, list(repeated.items())[:10]


async def status_command(workdir: Path) -> tuple[int, str]:
    """`broadcaster status` on this host while Redis is down: it cannot read the journal, and says so, and
    which of this host's services run degraded."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "broadcaster", "status", cwd=workdir, env=cli_env(), stderr=asyncio.subprocess.PIPE
    )
    _out, err = await process.communicate()
    return process.returncode or 0, err.decode()


async def _true(value: bool) -> bool:
    return value


async def _not_degraded(session: aiohttp.ClientSession, instance: ServeProcess) -> bool:
    _status, ready = await get(session, f"{instance.base}/readyz")
    return isinstance(ready, dict) and ready["store"]["degraded"] is False


async def degraded_gauge(session: aiohttp.ClientSession, instance: ServeProcess) -> float:
    async with session.get(f"{instance.base}/metrics") as answer:
        text = await answer.text()
    found = re.search(r"^broadcaster_store_degraded (\S+)$", text, re.M)
    assert found, text[:500]
    return float(found.group(1))


async def test_an_instance_started_while_redis_is_down_takes_updates_and_hands_them_over(
    workdir: Path, write_config: WriteConfig, redis_alone: RedisServer, receiver: UpdateReceiver
) -> None:
    targets = "".join(
        f'[[webhook.targets]]\nurl = "http://127.0.0.1:{receiver.port}/t/{n}"\nname = "t{n}"\n' for n in range(3)
    )
    write_config(
        f'[store]\nurl = "{redis_alone.url}"\n[service]\nsweep_interval = 1\n'
        f'[auth]\napi_tokens = {{ ops = "{TOKEN}" }}\n[mirror]\nenabled = false\n[webhook]\nenabled = true\n{targets}'
    )
    redis_alone.stop()
    async with serve_processes(workdir, 1) as (instance,), aiohttp.ClientSession() as session:
        opened = await post(session, instance.base, {"title": "DNS down", "status": "investigating", "message": "x"})
        await eventually(lambda: _true(receiver.reached(opened["update_id"]) == 3), within=30, every=0.05)
        redis_alone.start(again=True)
        await eventually(partial(_not_degraded, session, instance), within=30, every=0.2)
    shared = RedisStore(redis_alone.url)
    await shared.open()
    try:
        ledger = await shared.deliveries(update_id=opened["update_id"])
    finally:
        await shared.close()
    assert sorted(d.state.value for d in ledger) == ["delivered"] * 3
