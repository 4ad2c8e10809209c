"""One headless Chromium (Debian's) for the whole test session, driven by Playwright over CDP.

Starting Chromium takes a second or two; the suite starts it once, on first use, and each test connects
to it with a fresh browser context, so tests share the process but no cookies, storage or pages. It is
stopped at the end of the session by the PID this fixture started, and nothing else."""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.helpers import stop_process

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking switches Chromium phones home at start, which this machine refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
START_TIMEOUT = 30.0


@pytest.fixture(scope="session")
def chromium_endpoint() -> Iterator[str]:
    """The DevTools WebSocket URL of the session's Chromium (loopback only)."""
    with tempfile.TemporaryDirectory(prefix="broadcaster-chromium-") as profile:
        process = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_ARGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            yield _endpoint(process)
        finally:
            stop_process(process)
            if process.stderr is not None:
                process.stderr.close()


def _endpoint(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if match := _LISTENING.search(line):
            return match.group(1)
    raise RuntimeError(f"Chromium did not start its DevTools endpoint: {''.join(seen[-20:])}")


@pytest.fixture
async def browser(chromium_endpoint: str) -> AsyncIterator[Browser]:
    """The session's Chromium, connected for this test; contexts and pages it makes close with it."""
    async with async_playwright() as playwright:
        connected = await playwright.chromium.connect_over_cdp(chromium_endpoint)
        try:
            yield connected
        finally:
            await connected.close()  # over CDP: closes the contexts this test made, and disconnects
