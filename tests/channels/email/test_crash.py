"""Nobody is mailed twice beyond what was really in flight: `broadcaster send` killed with SIGKILL in the
middle of a fan-out through a real SMTP server, then `broadcaster retry` until it is done.

Every acceptance is journaled before its connection starts the next transaction, so a kill at any moment
repeats at most one transaction per pooled connection: the one whose reply the killed process never
read (or read but had not saved yet). The server takes a few milliseconds per message, as a real relay
does, so kills land mid-transaction."""

from __future__ import annotations

import random
import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.channels.email.conftest import Configure, Relay
from tests.channels.email.smtp_server import Script, smtp_server
from tests.support.helpers import run_cli, send_and_kill

SUBSCRIBERS = 1500
POOL_SIZE = 8
RETRIES = 5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_killed_fan_out_repeats_at_most_one_message_per_connection(
    configure: Configure, workdir: Path, seed: int
) -> None:
    people = [f"person{i:05d}@example.org" for i in range(SUBSCRIBERS)]
    kill_at = random.Random(seed).randrange(50, SUBSCRIBERS - 100)
    with smtp_server(Script(reply_delay=0.003)) as server:
        configure(Relay(server.port), subscribers=people, email={"pool_size": POOL_SIZE})
        (workdir / "broadcaster.toml").write_text(
            (workdir / "broadcaster.toml").read_text().replace("[mirror]\n", "[mirror]\nenabled = false\n")
        )
        received = server.recorder.received
        args = ["send", "--title", "Mail outage", "--status", "investigating", "--message", "Mail is delayed."]
        assert send_and_kill(args, cwd=workdir, when=lambda: len(received) >= kill_at, every=0.002) == -signal.SIGKILL
        for _ in range(RETRIES):
            retried = run_cli("retry", "--wait", "60", cwd=workdir)
            if retried.returncode == 0:
                break
        assert retried.returncode == 0, retried.stderr
        mailed = Counter(address for r in server.recorder.received for address in r.recipients)
    assert set(mailed) == set(people), "somebody was never mailed"
    repeated = sum(count - 1 for count in mailed.values())
    assert repeated <= POOL_SIZE, f"{repeated} repeated messages after one kill at {kill_at}"
