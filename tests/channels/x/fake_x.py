"""A fake X API v2 over HTTPS for tests and the benchmark: POST /2/tweets and GET /2/users/me.

It behaves as X does where the channel depends on it: every request must carry a valid OAuth 1.0a
signature for the test credentials (else 401), a post repeating the text of an earlier one is refused as
duplicate content (403), a reply to an unknown or deleted post is refused (403), and answers carry the
rate-limit and 24-hour quota headers. A test scripts the next answers per route (429, 503, an HTML 502,
401, a hang, a lost answer) with `script`.

Run it as a process (the benchmark does): `python -m tests.channels.x.fake_x --ca-file PATH` writes a fresh test
CA to PATH, serves api.twitter.com's certificate from it on 127.0.0.1, prints "port <n>" and runs until
SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
import socket
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import trustme
from aiohttp import web

from tests.channels.x.oauth1 import Credentials, check

HOST: Final = "api.twitter.com"
CREDENTIALS: Final = Credentials(
    consumer_key="ck-test-3fd1a8",
    consumer_secret="cs-test-8b42c9e07d",
    token="1650-at-test-5e90b2",
    token_secret="ats-test-c7a3f61d48",
)
SECRETS: Final = (CREDENTIALS.consumer_key, CREDENTIALS.consumer_secret, CREDENTIALS.token, CREDENTIALS.token_secret)
"""What must never appear in a ledger, a log or an error."""
HANDLE: Final = "example_status"
HANG_LIMIT: Final = 60.0
"""Seconds a hanging request is held at most, so a forgotten release never outlives a test."""
MAX_POSTS: Final = 100_000
POST_ROUTE: Final = "POST /2/tweets"
ME_ROUTE: Final = "GET /2/users/me"

Behaviour = Callable[["FakeX", web.Request, dict[str, Any]], Awaitable[web.StreamResponse | None]]
"""A scripted answer: a response to send, or None to carry on as X would."""


@dataclass(frozen=True, slots=True)
class Post:
    id: str
    text: str
    reply_to: str | None
    received_at: float


@dataclass(frozen=True, slots=True)
class Seen:
    route: str
    received_at: float
    connection: int
    """Identifies the TCP connection the request came on (reused connections share it)."""


@dataclass
class FakeX:
    credentials: Credentials = CREDENTIALS
    app_day_quota: int = 1500
    user_day_quota: int = 100
    posts: deque[Post] = field(default_factory=lambda: deque(maxlen=MAX_POSTS))
    requests: deque[Seen] = field(default_factory=lambda: deque(maxlen=MAX_POSTS))
    auth_failures: list[str] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    port: int = 0
    """Where `serving` listens (127.0.0.1)."""
    held: int = 0
    """Requests being held by `hang` right now."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _scripts: dict[str, deque[Behaviour]] = field(default_factory=lambda: {POST_ROUTE: deque(), ME_ROUTE: deque()})
    _texts: set[str] = field(default_factory=set)
    _post_ids: set[str] = field(default_factory=set)
    _nonces: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1790000000000000001))

    def script(self, route: str, *behaviours: Behaviour) -> None:
        """Answer the next requests on `route` (POST_ROUTE or ME_ROUTE) with these, in order."""
        self._scripts[route].extend(behaviours)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/2/tweets", self._create_post)
        app.router.add_get("/2/users/me", self._me)
        return app

    async def _create_post(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(POST_ROUTE, request, self._accept_post)

    async def _me(self, request: web.Request) -> web.StreamResponse:
        async def answer(_body: dict[str, Any]) -> web.StreamResponse:
            user = {"id": "1650000000000000001", "name": "Example Status", "username": HANDLE}
            return web.json_response({"data": user})

        return await self._handle(ME_ROUTE, request, answer)

    async def _handle(
        self, route: str, request: web.Request, carry_on: Callable[[dict[str, Any]], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(Seen(route, time.time(), hash(peer)))
        if problem := self._auth_problem(request):
            self.auth_failures.append(problem)
            return problem_response(401, "Unauthorized", "Unauthorized")
        body = await request.json() if request.can_read_body else {}
        if self._scripts[route]:
            answer = await self._scripts[route].popleft()(self, request, body)
            if answer is not None:
                return answer
        return await carry_on(body)

    def _auth_problem(self, request: web.Request) -> str | None:
        if len(self._nonces) >= MAX_POSTS:
            self._nonces.clear()  # bounded: only a very long benchmark gets here, and it replays nothing
        return check(
            request.headers.get("Authorization"),
            method=request.method,
            base_url=f"https://{request.host.lower()}{request.path}",
            query=request.query.items(),
            expected=self.credentials,
            now=time.time(),
            seen_nonces=self._nonces,
        )

    async def _accept_post(self, body: dict[str, Any]) -> web.StreamResponse:
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return problem_response(400, "Invalid Request", "One or more parameters to your request was invalid.")
        if text in self._texts:
            return problem_response(403, "Forbidden", "You are not allowed to create a Tweet with duplicate content.")
        reply = body.get("reply") or {}
        reply_to = reply.get("in_reply_to_tweet_id")
        if reply_to is not None and (reply_to in self.deleted or reply_to not in self._post_ids):
            return problem_response(
                403, "Forbidden", "You attempted to reply to a Tweet that is deleted or not visible to you."
            )
        post = self.record(text, reply_to)
        data = {"id": post.id, "text": text, "edit_history_tweet_ids": [post.id]}
        return web.json_response({"data": data}, status=201, headers=self.quota_headers())

    def record(self, text: str, reply_to: str | None) -> Post:
        """Store a post as X would (also used by behaviours that accept a post and then lose the answer)."""
        post = Post(str(next(self._ids)), text, reply_to, time.time())
        self.posts.append(post)
        if len(self._texts) >= MAX_POSTS:  # bounded: the benchmark posts for a long time
            self._texts.clear()
            self._post_ids.clear()
        self._texts.add(text)
        self._post_ids.add(post.id)
        return post

    def quota_headers(self) -> dict[str, str]:
        reset = int(time.time())
        posted = len(self.posts)
        return {
            "x-rate-limit-limit": "100",
            "x-rate-limit-remaining": str(max(0, 100 - posted)),
            "x-rate-limit-reset": str(reset + 900),
            "x-app-limit-24hour-limit": str(self.app_day_quota),
            "x-app-limit-24hour-remaining": str(max(0, self.app_day_quota - posted)),
            "x-app-limit-24hour-reset": str(reset + 86400),
            "x-user-limit-24hour-limit": str(self.user_day_quota),
            "x-user-limit-24hour-remaining": str(max(0, self.user_day_quota - posted)),
            "x-user-limit-24hour-reset": str(reset + 86400),
        }


def problem_response(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error the way X v2 answers: a JSON problem document."""
    problem = {"title": title, "detail": detail, "type": "about:blank", "status": status}
    return web.json_response(problem, status=status, headers=headers)


# --- scripted behaviours


def rate_limited(reset: float, *, family: str = "x-rate-limit") -> Behaviour:
    """429 with `family`-remaining 0 and -reset at epoch second `reset` (rounded up, as X sends it)."""

    async def behave(_fake: FakeX, _request: web.Request, _body: dict[str, Any]) -> web.StreamResponse:
        headers = {f"{family}-limit": "100", f"{family}-remaining": "0", f"{family}-reset": str(int(reset + 0.999))}
        return problem_response(429, "Too Many Requests", "Too Many Requests", headers)

    return behave


def status(code: int, title: str, detail: str) -> Behaviour:
    """A JSON problem answer, e.g. status(503, "Service Unavailable", "Service Unavailable")."""

    async def behave(_fake: FakeX, _request: web.Request, _body: dict[str, Any]) -> web.StreamResponse:
        return problem_response(code, title, detail)

    return behave


def html_bad_gateway() -> Behaviour:
    """502 with an HTML page, as a proxy in front of X answers."""

    async def behave(_fake: FakeX, _request: web.Request, _body: dict[str, Any]) -> web.StreamResponse:
        page = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
        return web.Response(status=502, text=page, content_type="text/html")

    return behave


def hang() -> Behaviour:
    """Hold the request until `fake.release` is set (at most HANG_LIMIT seconds), then carry on."""

    async def behave(fake: FakeX, _request: web.Request, _body: dict[str, Any]) -> web.StreamResponse | None:
        fake.held += 1
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(HANG_LIMIT):
                    await fake.release.wait()
        finally:
            fake.held -= 1
        return None

    return behave


def lose_answer() -> Behaviour:
    """Create the post, then drop the connection before answering: the client never learns it worked."""

    async def behave(fake: FakeX, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        fake.record(body["text"], reply_to)
        if request.transport is not None:
            request.transport.abort()
        raise web.HTTPServiceUnavailable  # never reaches the client: the connection is gone

    return behave


def accept_without_json() -> Behaviour:
    """Create the post, then answer 201 with a plain-text body instead of X's JSON."""

    async def behave(fake: FakeX, _request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        fake.record(body["text"], (body.get("reply") or {}).get("in_reply_to_tweet_id"))
        return web.Response(status=201, text="Created")

    return behave


# --- serving


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    return context


@contextlib.asynccontextmanager
async def serving(fake: FakeX, ca: trustme.CA, *, port: int = 0) -> AsyncIterator[int]:
    """Serve `fake` over HTTPS on 127.0.0.1; yields the port. Held requests are cut off at exit."""
    runner = web.AppRunner(fake.app(), shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    listener = socket.create_server(("127.0.0.1", port))
    try:
        await web.SockSite(runner, listener, ssl_context=server_context(ca)).start()
        fake.port = listener.getsockname()[1]
        yield fake.port
    finally:
        fake.release.set()
        await runner.cleanup()
        listener.close()


async def _main(ca_file: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(ca_file))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serving(FakeX(app_day_quota=10**9, user_day_quota=10**9), ca) as port:
        print(f"port {port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ca-file", type=Path, required=True, help="where to write the test CA's certificate")
    asyncio.run(_main(parser.parse_args().ca_file))
