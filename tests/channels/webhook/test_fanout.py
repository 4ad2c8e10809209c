"""Fan-out costs: one update to many targets reads the journal once, and the CLI drives the channel."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from broadcaster.domain.models import IncidentHistory, UpdateDraft
from broadcaster.runtime import open_runtime
from channels.base import ChannelContext, Job, JournalReader
from channels.webhook import WebhookChannel
from tests.channels.webhook.conftest import Configure, target
from tests.channels.webhook.receiver import Answer, Receiver
from tests.support.helpers import cli_env

SECRET = "whsec_Y2xpLXRlc3Qtc2lnbmluZy1rZXktMzItYnl0ZXMh"


class CountingJournal:
    """The real journal, with its site_history calls counted."""

    def __init__(self, journal: JournalReader) -> None:
        self._journal = journal
        self.reads = 0

    async def site_history(self, *, recent: int | None) -> list[IncidentHistory]:
        self.reads += 1
        return await self._journal.site_history(recent=recent)

    async def suppressed(self) -> frozenset[str]:
        return await self._journal.suppressed()


async def no_progress(_entries: object) -> None:
    return None


async def test_one_update_to_many_targets_reads_the_journal_once(configure: Configure, receiver: Receiver) -> None:
    """Twenty concurrent sends of one update share a single page-status read of the journal."""
    settings = configure(*(target(receiver.url(f"/t{i}")) for i in range(20)))
    runtime = await open_runtime(settings)
    journal = CountingJournal(runtime.store)
    channel = WebhookChannel.create(ChannelContext(settings, journal))
    try:
        accepted = await runtime.submit(UpdateDraft(title="x", status="investigating", message="x"))
        jobs = [
            Job(
                delivery_id=d.id,
                channel="webhook",
                target=d.target,
                attempt=1,
                max_attempts=3,
                expires_at=d.expires_at,
                incident=accepted.incident,
                update=accepted.update,
                history=(accepted.update,),
                thread_parent=None,
                progress={},
                save_progress=no_progress,
                stop_requested=lambda: False,
            )
            for d in accepted.deliveries
        ]
        receipts = await asyncio.gather(*(channel.send(job) for job in jobs))
    finally:
        await channel.aclose()
        await runtime.close()
    assert len(receipts) == len(receiver.received) == 20
    assert journal.reads == 1


async def run_cli(*args: str, cwd: Path) -> tuple[int, str]:
    """The real CLI in a child process, without blocking this loop (the receiver runs in it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "broadcaster",
        *args,
        cwd=cwd,
        env=cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_cli_send_delivers_a_signed_envelope(configure: Configure, receiver: Receiver, workdir: Path) -> None:
    """`broadcaster send` exits 0 once the webhook target has the signed Statuspage envelope."""
    configure(target(receiver.url("/cli"), name="cli", secret=SECRET))
    code, output = await run_cli(
        "send",
        "--config",
        "broadcaster.toml",
        "--title",
        "API errors",
        "--status",
        "investigating",
        "--message",
        "Looking into it.",
        cwd=workdir,
    )
    assert code == 0, output
    (request,) = receiver.at("/cli")
    body = Webhook(SECRET).verify(request.body, request.headers)
    assert (body["incident"]["name"], body["incident"]["status"]) == ("API errors", "investigating")


async def test_cli_check_reports_each_target(
    configure: Configure, receiver: Receiver, closed_port: int, workdir: Path
) -> None:
    """`broadcaster check` prints one line per target and exits 3 when one of them is unreachable."""
    receiver.script("/pinged", Answer(202))
    configure(
        target(receiver.url("/pinged"), name="pinged", ping=True),
        target(f"http://127.0.0.1:{closed_port}/x", name="dead"),
    )
    code, output = await run_cli("check", "--config", "broadcaster.toml", cwd=workdir)
    assert code == 3, output
    assert "ok    webhook pinged: ping answered HTTP 202 in " in output
    assert f"FAIL  webhook dead: cannot connect to 127.0.0.1:{closed_port}" in output
    assert len(receiver.at("/pinged")) == 1
