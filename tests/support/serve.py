"""`broadcaster serve` as an operator runs it, in processes of its own, for tests that need the real thing:
each started on a free port from the configuration in a working directory, stopped by its PID."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.helpers import cli_env


@dataclass
class ServeProcess:
    process: asyncio.subprocess.Process
    base: str
    """Where it answers: http://127.0.0.1:PORT."""


@asynccontextmanager
async def serve_processes(workdir: Path, count: int = 1) -> AsyncIterator[list[ServeProcess]]:
    """`count` instances on the configuration in `workdir`, each listening once yielded; SIGTERM at the end
    (SIGKILL after 30 s) for any still running."""
    started: list[ServeProcess] = []
    try:
        for _ in range(count):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "broadcaster",
                "serve",
                "--port",
                "0",
                cwd=workdir,
                env=cli_env(),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            assert process.stdout is not None
            async with asyncio.timeout(30):
                banner = (await process.stdout.readline()).decode()
            assert banner.startswith("broadcaster: serving on"), banner
            started.append(ServeProcess(process, banner.split()[-1]))
        yield started
    finally:
        for instance in started:
            if instance.process.returncode is None:
                instance.process.send_signal(signal.SIGTERM)
        for instance in started:
            try:
                async with asyncio.timeout(30):
                    await instance.process.wait()
            except TimeoutError:
                instance.process.kill()
                await instance.process.wait()


@dataclass
class Served:
    """One `serve` run from a synchronous test: where it answers, and once it has stopped, how it ended."""

    process: subprocess.Popen[str]
    base: str
    """Where it answers: http://127.0.0.1:PORT."""
    stdout: str = ""
    stderr: str = field(default="", repr=False)


@contextmanager
def serving(workdir: Path, *options: str) -> Iterator[Served]:
    """`broadcaster serve --port 0 OPTIONS` on the configuration in `workdir`, listening once yielded, stopped
    with SIGTERM as the block ends (SIGKILL if it has not stopped 30 s later); its exit code and what it wrote
    are in the Served after the block."""
    process = subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "serve", "--port", "0", *options],
        cwd=workdir,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("broadcaster: serving on http://127.0.0.1:"), banner
        served = Served(process, banner.split()[-1])
        yield served
        process.send_signal(signal.SIGTERM)
        served.stdout, served.stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
