"""`broadcaster serve` acts at once on what other processes of its host do to the journal, not at its next
poll or sweep: both are set to ten minutes here, so only the notices (store/sqlite/notices.py) can explain
the work being picked up within the test's seconds."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broadcaster.domain.models import UpdateDraft
from broadcaster.runtime import open_runtime
from config import load_settings
from tests.channels.webhook.receiver import Answer, Receiver
from tests.conftest import WriteConfig
from tests.support.helpers import cli_env, eventually
from tests.support.serve import serve_processes

SLOW = "[service]\npoll_interval = 600\nsweep_interval = 600\n"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest.fixture
async def serving(workdir: Path, write_config: WriteConfig, receiver: Receiver) -> AsyncIterator[Path]:
    """`broadcaster serve` in its own process, polling and sweeping every ten minutes, with the mirror and a
    webhook target on the receiver. Yields the working directory once it listens."""
    write_config(f'{SLOW}[webhook]\nenabled = true\n[[webhook.targets]]\nurl = "{receiver.url("/hook")}"\n')
    async with serve_processes(workdir):
        yield workdir


async def test_an_update_journaled_by_another_process_goes_out_at_once(serving: Path, receiver: Receiver) -> None:
    """This test's process journals an update, as `broadcaster send --wait 0` or another tool would; serve
    delivers it to both channels long before its next poll."""
    runtime = await open_runtime(load_settings(serving / "broadcaster.toml"))
    try:
        draft = UpdateDraft(title="Checkout errors", status="investigating", message="Some card payments fail.")
        accepted = await runtime.submit(draft)
    finally:
        await runtime.close()
    assert {d.channel for d in accepted.deliveries} == {"mirror", "webhook"}

    async def delivered() -> bool:
        return bool(receiver.at("/hook")) and (serving / "public" / "index.html").exists()

    await eventually(delivered, within=15)


async def test_a_killed_send_leaves_its_delivery_to_serve_at_once(serving: Path, receiver: Receiver) -> None:
    """`send` takes the webhook delivery and is killed while the receiver holds it open; serve takes the
    lease back as soon as the process is gone (not when the lease runs out, nor at its sweep) and delivers."""
    receiver.script("/hook", Answer(status=204, delay=60.0), Answer(status=204))
    sender = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "broadcaster",
        "send",
        "--channel",
        "webhook",
        "--title",
        "Checkout errors",
        "--status",
        "investigating",
        "--message",
        "Some card payments fail.",
        cwd=serving,
        env=cli_env(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def held() -> bool:
        return "/hook" in receiver.answering

    try:
        await eventually(held, within=30)
    finally:
        sender.send_signal(signal.SIGKILL)
        await sender.wait()

    async def delivered_again() -> bool:
        return "/hook" in receiver.answered

    await eventually(delivered_again, within=15)
    assert len(receiver.at("/hook")) == 2
