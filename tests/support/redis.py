"""A real redis-server (Debian's package) for the tests: one per test session on a free loopback port, in a
directory of its own, with no persistence; stopped by its PID at the end. A persistent one (append-only
file, fsync at every write, as the README advises for production) can be stopped and started again on the
same port with what it held."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.helpers import stop_process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class RedisServer:
    def __init__(self, *, persistent: bool = False) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="broadcaster-redis-"))
        self.port = 0
        self.persistence = ["--appendonly", "yes", "--appendfsync", "always"] if persistent else ["--appendonly", "no"]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, again: bool = False) -> RedisServer:
        """Start on a free port; `again`: on the port it had (after `stop`), with what it had persisted."""
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed: `make test` installs it (bash .ci/system-deps)")
        for _ in range(5):  # a free port may be taken between the probe and the bind
            if not again:
                self.port = free_port()
            self._process = subprocess.Popen(
                [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *self.persistence],
                cwd=self.directory,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._ready():
                return self
            self.stop()
        raise RuntimeError("redis-server did not start")

    def _ready(self, within: float = 10.0) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as client:
                    if client.ping():
                        return True
            except redis.ConnectionError:
                time.sleep(0.02)
        return False

    def flush(self) -> None:
        with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5) as client:
            client.flushall()

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None

    def wipe(self) -> None:
        """Forget what it persisted (stopped): started again, it comes back empty, as a server that lost its disk."""
        assert self._process is None, "stop it first"
        shutil.rmtree(self.directory)
        self.directory.mkdir()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
