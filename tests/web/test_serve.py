"""`broadcaster serve` as an operator runs it: a long-lived process that finishes what the CLI left."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.helpers import cli_env, run_cli


def get_json(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL the test built
        return response.status, json.loads(response.read())


def test_serve_delivers_what_the_cli_left_and_stops_cleanly(tmp_path: Path) -> None:
    assert run_cli("pause", "mirror", cwd=tmp_path).returncode == 0
    held = run_cli("send", "--title", "T", "--status", "investigating", "--message", "M", cwd=tmp_path)
    assert held.returncode == 3
    server = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "serve", "--port", "0"],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert banner.startswith("broadcaster: serving on http://127.0.0.1:"), banner
        base = banner.split()[-1]
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
        server.send_signal(signal.SIGTERM)
        out, _err = server.communicate(timeout=20)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate(timeout=10)
    assert server.returncode == 0
    assert "stopped" in out
    assert run_cli("retry", cwd=tmp_path).stderr.strip() == "Nothing is waiting to be delivered."
