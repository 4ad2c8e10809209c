"""The webhook benchmarks' receivers: processes of tests.channels.webhook.bench_receiver, started and
stopped by PID, with their request counters read and reset over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field

import aiohttp


@dataclass
class Receivers:
    processes: list[subprocess.Popen[str]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    control_ports: list[int] = field(default_factory=list)
    """One port per process, for its counters."""

    def start(self, count: int, ports_each: int) -> None:
        for _ in range(count):
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.channels.webhook.bench_receiver", "--ports", str(ports_each)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.processes.append(process)
            assert process.stdout is not None
            ports = json.loads(process.stdout.readline())["ports"]
            self.ports += ports
            self.control_ports.append(ports[0])

    def stop(self) -> None:
        for process in self.processes:
            if process.stdin:
                process.stdin.close()  # the receiver exits when its stdin closes
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
            if process.stdout:
                process.stdout.close()

    async def counts(self, session: aiohttp.ClientSession) -> tuple[int, int]:
        requests = paths = 0
        for port in self.control_ports:
            async with session.get(f"http://127.0.0.1:{port}/__stats") as response:
                stats = await response.json()
            requests, paths = requests + stats["requests"], paths + stats["paths"]
        return requests, paths

    async def reset(self, session: aiohttp.ClientSession) -> None:
        for port in self.control_ports:
            async with session.post(f"http://127.0.0.1:{port}/__reset") as response:
                await response.read()
