"""Real servers to publish to, each in its own process, started on a free loopback port and stopped by PID:
moto's standalone S3 server and Debian's openssh-server. And an HTTP proxy the test steers, in front of
moto: it passes requests on, holds them (a store that accepts connections and never answers), or passes
the first N uploads and holds the rest, or refuses an access key as S3 refuses one it does not know."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import boto3
from aiohttp import web

from tests.support.helpers import stop_process
from tests.support.redis import free_port

KEY_ID, SECRET = "AKIATESTPUBLISH00001", "publish-test-secret-key-0001"


def wait_for_port(port: int, process: subprocess.Popen[bytes], within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class MotoServer:
    """`moto_server -H 127.0.0.1 -p PORT`, one per test session."""

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        # The interpreter running the tests, not PATH: `make test` runs .venv/bin/pytest without .venv/bin on it.
        if importlib.util.find_spec("moto.server") is None:
            raise RuntimeError("moto[server] is not installed: `make test` installs the dev extra")
        for _ in range(5):
            self.port = free_port()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if wait_for_port(self.port, self._process):
                return self
            stop_process(self._process)
        raise RuntimeError("moto_server did not start")

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object in `bucket`, by key."""
        client = self.client()
        keys = [
            item["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for item in page.get("Contents", [])
        ]
        return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}

    def stop(self) -> None:
        stop_process(self._process)
        self._process = None


class S3Proxy:
    """An HTTP proxy to moto in a thread of the test process. `hang`: every request is read and never
    answered. `hold_after`: uploads (PUT) past that many are held likewise. Counts what it passed on."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.hang = False
        self.hold_after: int | None = None
        self.refused_key: str | None = None
        """Requests signed with this access key id are answered 403 InvalidAccessKeyId."""
        self.passed: list[tuple[str, str]] = []
        """(method, path) of every request passed on."""
        self.held = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopping = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def uploads(self) -> list[str]:
        return [path for method, path in self.passed if method == "PUT"]

    def start(self) -> S3Proxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def _stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.refused_key and f"Credential={self.refused_key}/" in request.headers.get("Authorization", ""):
            refusal = b"<Error><Code>InvalidAccessKeyId</Code><Message>unknown key</Message></Error>"
            return web.Response(status=403, body=refusal, content_type="application/xml")
        uploads = len(self.uploads())
        if self.hang or (request.method == "PUT" and self.hold_after is not None and uploads >= self.hold_after):
            self.held += 1
            await self._stopping.wait()  # until the client goes away, or the proxy stops
            return web.Response(status=503)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers, data=body
        ) as answer:
            content = await answer.read()
            self.passed.append((request.method, request.path))
            kept = {k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "etag")}
            return web.Response(status=answer.status, body=content, headers=kept)


def site_files(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (no hidden ones), by "/"-separated relative path."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    }
