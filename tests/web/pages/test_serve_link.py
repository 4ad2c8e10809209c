"""`broadcaster serve` with no user yet: on a terminal, bound to loopback, it prints a single-use login link
(checked here on a pseudo-terminal, then opened twice); otherwise it says how to make a user."""

from __future__ import annotations

import http.client
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from broadcaster.web.auth.gate import SESSION_COOKIE
from tests.support.helpers import cli_env

LINK = re.compile(r"http://127\.0\.0\.1:\d+/login/link\?token=[A-Za-z0-9_.-]+")
READ_TIMEOUT = 20.0


@contextmanager
def serving(cwd: Path, stdout: int) -> Iterator[subprocess.Popen[bytes]]:
    """`broadcaster serve` on 127.0.0.1 (any free port) with its output to `stdout`; stopped with SIGTERM."""
    server = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "serve", "--host", "127.0.0.1", "--port", "0"],
        cwd=cwd,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
    assert server.returncode == 0


def read_until(read: Callable[[], bytes], done: Callable[[str], bool]) -> str:
    """What the server printed, read until `done` holds for it (bounded by READ_TIMEOUT)."""
    seen = ""
    deadline = time.monotonic() + READ_TIMEOUT
    while not done(seen):
        assert time.monotonic() < deadline, f"not printed within {READ_TIMEOUT}s: {seen!r}"
        seen += read().decode(errors="replace")
    return seen


def get(link: str) -> http.client.HTTPResponse:
    """GET without following redirects, as a browser's first request for the link."""
    parts = urlsplit(link)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_serve_prints_a_single_use_login_link_on_a_terminal(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        with serving(tmp_path, follower):
            os.close(follower)
            follower = -1

            def read() -> bytes:
                ready, _, _ = select.select([leader], [], [], 0.5)
                return os.read(leader, 4096) if ready else b""

            printed = read_until(read, lambda seen: LINK.search(seen) is not None and seen.endswith("\r\n"))
            match = LINK.search(printed)
            assert match is not None
            assert "works once, for 15 minutes" in printed
            first = get(match.group())
            assert (first.status, first.getheader("Location")) == (303, "/")
            assert f"{SESSION_COOKIE}=" in (first.getheader("Set-Cookie") or "")
            again = get(match.group())
            assert again.status == 403
            assert again.getheader("Set-Cookie") is None
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)


def test_serve_says_how_to_make_a_user_when_not_on_a_terminal(tmp_path: Path) -> None:
    with serving(tmp_path, subprocess.PIPE) as server:
        assert server.stdout is not None
        printed = read_until(server.stdout.readline, lambda seen: "user add" in seen)
    assert "broadcaster user add NAME" in printed
    assert "token=" not in printed
