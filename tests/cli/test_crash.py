"""Nothing acknowledged is lost: the CLI killed with SIGKILL mid-delivery leaves a journal that the next
run finishes, without waiting for the dead process's lease to run out."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from tests.support.channels import GATE_ENV, SINK_ENV
from tests.support.helpers import run_cli, send_and_kill


def delivery_states(workdir: Path) -> dict[str, str]:
    db = workdir / "var" / "broadcaster.db"
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return dict(conn.execute("SELECT channel, state FROM deliveries").fetchall())
    except sqlite3.OperationalError:  # the schema is being created right now
        return {}


def kill_once_in_flight(workdir: Path, env: dict[str, str], args: list[str], wanted: dict[str, str]) -> int:
    """Run `broadcaster send ARGS` (with the gate channel) and SIGKILL it once the journal shows `wanted`.
    Returns the exit status (negative: the signal)."""
    return send_and_kill(
        ["send", *args],
        cwd=workdir,
        env=env,
        module="tests.support.cli",
        when=lambda: delivery_states(workdir) == wanted,
        every=0.05,
        within=30,
    )


def test_an_update_accepted_then_killed_is_delivered_on_the_next_run(tmp_path: Path) -> None:
    gate, sink = tmp_path / "gate-open", tmp_path / "sink.txt"
    env = {GATE_ENV: str(gate), SINK_ENV: str(sink)}
    # Accepted and acknowledged: the mirror is done, the gate channel holds its delivery in flight.
    status = kill_once_in_flight(
        tmp_path,
        env,
        [
            "--title",
            "Payments down",
            "--status",
            "investigating",
            "--message",
            "Card payments fail.",
            "--channel",
            "gate",
            "--channel",
            "mirror",
        ],
        {"gate": "in_flight", "mirror": "delivered"},
    )
    assert status == -signal.SIGKILL
    assert not sink.exists()  # it never got through
    assert delivery_states(tmp_path) == {"gate": "in_flight", "mirror": "delivered"}

    gate.touch()
    retried = run_cli("retry", cwd=tmp_path, env=env, module="tests.support.cli")
    assert retried.returncode == 0, retried.stderr
    assert delivery_states(tmp_path) == {"gate": "delivered", "mirror": "delivered"}
    delivered = sink.read_text().splitlines()
    assert len(delivered) == 1  # exactly once

    ledger = run_cli("status", delivered[0].split()[1], cwd=tmp_path, env=env, module="tests.support.cli")
    assert "interrupted its process died" in ledger.stdout
    assert "delivered" in ledger.stdout


def test_a_killed_send_is_resumed_by_the_next_send_too(tmp_path: Path) -> None:
    """Any later run (not only `retry`) takes back the dead process's work: here a second send."""
    gate, sink = tmp_path / "gate-open", tmp_path / "sink.txt"
    env = {GATE_ENV: str(gate), SINK_ENV: str(sink)}
    status = kill_once_in_flight(
        tmp_path,
        env,
        ["--title", "First", "--status", "investigating", "--message", "x", "--channel", "gate"],
        {"gate": "in_flight"},
    )
    assert status == -signal.SIGKILL
    gate.touch()
    second = run_cli(
        "send",
        "--title",
        "Second",
        "--status",
        "investigating",
        "--message",
        "y",
        "--channel",
        "gate",
        cwd=tmp_path,
        env=env,
        module="tests.support.cli",
    )
    assert second.returncode == 0, second.stderr
    assert len(sink.read_text().splitlines()) == 2  # the recovered one, then the new one (in order)
