"""A real webhook receiver for the tests: an aiohttp server on 127.0.0.1 (HTTP or HTTPS) that records
every request and answers as each path is scripted to (status, headers, body, delay)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Answer:
    """One scripted answer. `delay` (seconds) is slept before answering."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes
    at: float
    """time.time() when the request had been read."""

    def standard_headers(self) -> dict[str, str]:
        return {name: value for name, value in self.headers.items() if name.startswith("webhook-")}


class Receiver:
    """Answers each path with its scripted answers in turn (the last one repeats; default 204)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answering: set[str] = set()
        """Paths with a request being answered right now (inside a delay)."""
        self.answered: list[str] = []
        self._scripts: dict[str, list[Answer]] = defaultdict(list)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.scheme = "http"

    def script(self, path: str, *answers: Answer) -> None:
        self._scripts[path] = list(answers)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [request for request in self.received if request.path == path]

    def at_prefix(self, prefix: str) -> list[Received]:
        return [request for request in self.received if request.path.startswith(prefix)]

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.scheme = "https" if ssl_context else "http"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        self.received.append(Received(path, {k.lower(): v for k, v in request.headers.items()}, body, time.time()))
        answers = self._scripts.get(path) or [Answer()]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if answer.delay:
            self.answering.add(path)
            try:
                await asyncio.sleep(answer.delay)
            finally:
                self.answering.discard(path)
        self.answered.append(path)
        return web.Response(status=answer.status, headers=answer.headers, body=answer.body)
