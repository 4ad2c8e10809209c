"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 10.0, every: float = 0.02) -> None:
    """Poll `check` until it holds; fail after `within` seconds. Bounded, so a broken lane fails the test
    instead of hanging it."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(every)


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def run_cli(
    *args: str, cwd: Path, env: Mapping[str, str] | None = None, stdin: str | None = None, module: str = "broadcaster"
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a child process (as a user would), bounded by a timeout."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=cli_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def send_and_kill(
    args: Sequence[str],
    *,
    cwd: Path,
    when: Callable[[], bool],
    env: Mapping[str, str] | None = None,
    module: str = "broadcaster",
    every: float = 0.005,
    within: float = 60.0,
) -> int:
    """Run `python -m MODULE ARGS` and SIGKILL it as soon as `when()` holds (polled every `every` seconds).
    Returns its exit status (negative: the signal). Fails if it ends by itself first, or `when()` never holds."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=cli_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + within
        while not when():
            if process.poll() is not None:
                raise AssertionError(f"it ended before it was killed: {process.communicate()[1]}")
            assert time.monotonic() < deadline, f"the moment to kill it did not come within {within} s"
            time.sleep(every)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None and not process.stderr.closed:
            process.communicate()
    return process.returncode


def stop_process(process: subprocess.Popen[Any] | None) -> None:
    """Stop a process this test started (SIGTERM, then SIGKILL after 10 s), if it still runs."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
