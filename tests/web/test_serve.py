"""`broadcaster serve` as an operator runs it: a long-lived process that finishes what the CLI left."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.helpers import run_cli
from tests.support.serve import serving


def get_json(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL the test built
        return response.status, json.loads(response.read())


def test_serve_delivers_what_the_cli_left_and_stops_cleanly(tmp_path: Path) -> None:
    assert run_cli("pause", "mirror", cwd=tmp_path).returncode == 0
    held = run_cli("send", "--title", "T", "--status", "investigating", "--message", "M", cwd=tmp_path)
    assert held.returncode == 3
    with serving(tmp_path) as served:
        base = served.base
        assert get_json(f"{base}/healthz") == (200, {"status": "ok"})

        deadline = time.monotonic() + 20
        while get_json(f"{base}/readyz")[1]["lanes"]["mirror"]["state"] != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        status, ready = get_json(f"{base}/readyz")
        assert status == 200
        assert (ready["status"], ready["lanes"]["mirror"]["queue_depth"]) == ("ready", 1)

        assert run_cli("resume", "mirror", cwd=tmp_path).returncode == 0
        while not (tmp_path / "public" / "index.html").exists():
            assert time.monotonic() < deadline, "serve never delivered the held update"
            time.sleep(0.1)
        while get_json(f"{base}/readyz")[1]["lanes"]["mirror"]["queue_depth"] != 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert served.process.returncode == 0
    assert "stopped" in served.stdout
    assert run_cli("retry", cwd=tmp_path).stderr.strip() == "Nothing is waiting to be delivered."


def test_serve_moves_a_maintenance_on_when_its_window_opens(tmp_path: Path) -> None:
    """The window opens a few seconds after the maintenance is announced; `serve`, started then, posts its
    in-progress update with the template's text (nobody runs `send`)."""
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    announced = run_cli(
        *("send", "--title", "DB upgrade", "--status", "scheduled", "--message", "Read-only for an hour."),
        *("--scheduled-for", opens.isoformat(), "--scheduled-until", "1h", "--json"),
        cwd=tmp_path,
    )
    assert announced.returncode == 0, announced.stderr
    incident_id = json.loads(announced.stdout)["incident_id"]
    while datetime.now(UTC) <= opens:  # bounded: `opens` is three seconds after the test began
        time.sleep(0.2)

    def shown() -> dict[str, Any]:
        result = run_cli("status", incident_id, "--json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        found: dict[str, Any] = json.loads(result.stdout)
        return found

    with serving(tmp_path):
        deadline = time.monotonic() + 30
        while shown()["status"] != "in_progress":
            assert time.monotonic() < deadline, "serve never moved the maintenance on"
            time.sleep(0.2)
    latest = shown()["updates"][-1]
    assert (latest["status"], latest["author"]) == ("in_progress", "broadcaster (schedule)")
