"""Several `broadcaster send`s at once to one incident, on one journal: every webhook delivery arrives once,
the ledger counts it once, and no send is left waiting out its --wait behind another's leases.

In-order webhook targets make the sends depend on each other: a later update's delivery to a target waits
for the earlier one, which another process may hold. Each send takes its own update's deliveries and the
earlier ones holding them back, finishes what it has started before it exits, and hands back the rest."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections import Counter
from pathlib import Path

from tests.channels.webhook.receiver import Receiver
from tests.support.helpers import cli_env

TARGETS = 200
SENDS = 5
ROUNDS = 3
WAIT = 60  # far longer than any round takes; a send that waits it out exits 3 and fails the test


async def send(workdir: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "broadcaster",
        "send",
        "--wait",
        str(WAIT),
        "--json",
        *args,
        cwd=workdir,
        env=cli_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=WAIT + 30)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_concurrent_sends_to_one_incident_deliver_every_webhook_once(workdir: Path) -> None:
    receiver = await Receiver().start()
    try:
        targets = "".join(f'[[webhook.targets]]\nurl = "{receiver.url(f"/t{i}")}"\n' for i in range(TARGETS))
        (workdir / "broadcaster.toml").write_text(f"[mirror]\nenabled = false\n[webhook]\nenabled = true\n{targets}")
        code, out, err = await send(
            workdir, "--title", "Checkout errors", "--status", "investigating", "--message", "Looking into it."
        )
        assert code == 0, err
        incident = json.loads(out)["incident_id"]
        for round_number in range(ROUNDS):
            results = await asyncio.gather(
                *(
                    send(
                        workdir,
                        "--incident",
                        incident,
                        "--status",
                        "identified",
                        "--message",
                        f"Round {round_number}, update {k}.",
                    )
                    for k in range(SENDS)
                )
            )
            assert [code for code, _, _ in results] == [0] * SENDS, [err[-2000:] for _, _, err in results]
    finally:
        await receiver.stop()
    with sqlite3.connect(workdir / "var" / "broadcaster.db") as journal:
        deliveries = {row[0] for row in journal.execute("SELECT id FROM deliveries")}
        states = Counter(row[0] for row in journal.execute("SELECT state FROM deliveries"))
        logged = journal.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    posts = Counter(request.headers["webhook-id"] for request in receiver.received)
    assert states == {"delivered": TARGETS * (1 + ROUNDS * SENDS)}
    assert set(posts) == {f"msg_{delivery}" for delivery in deliveries}
    assert [webhook_id for webhook_id, count in posts.items() if count > 1] == []
    assert logged == 0  # every delivery went through at its first attempt: one POST, one attempt
