"""The commander's pages over a real journal and running lanes: the application served on loopback by
aiohttp's test server, a user with an argon2 password, and a scripted channel (targets a and b) beside the
mirror."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.web import create_app
from broadcaster.web.auth.gate import Gate
from broadcaster.web.auth.passwords import hash_password
from broadcaster.web.keys import GATE
from channels.base import Job, Receipt
from channels.registry import REGISTRY
from config import load_settings
from tests.conftest import WriteConfig
from tests.support.channels import Behaviour, Script, deliver, scripted_spec

USER: Final = "ann"
PASSWORD: Final = "correct-horse-staple"
XSS: Final = "<script>alert(1)</script>"

Client = TestClient[web.Request, web.Application]
_HIDDEN = re.compile(r'name="(?P<name>csrf|login_token|form_key)" value="(?P<value>[^"]*)"')


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def hidden_field(html: str, name: str) -> str:
    """The value of a hidden field (a token) in a page."""
    found = [match["value"] for match in _HIDDEN.finditer(html) if match["name"] == name]
    assert found, f"no hidden field {name!r} in the page"
    return found[0]


def hold(release: asyncio.Event) -> Behaviour:
    """A behaviour for the scripted channel that delivers once `release` is set."""

    async def behave(job: Job) -> Receipt:
        await release.wait()
        return await deliver(job)

    return behave


class ServedAsInProduction(TestServer):
    """aiohttp's test server, but with handlers left running when their client goes, as `broadcaster serve`'s
    AppRunner does (the test server cancels them): a handler must find a client that left by itself."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return web.AppRunner(self.app, **{**kwargs, "handler_cancellation": False})


@dataclass
class Commander:
    client: Client
    runtime: Runtime
    script: Script

    @property
    def gate(self) -> Gate:
        return self.client.app[GATE]

    async def log_in(
        self, user: str = USER, password: str = PASSWORD, *, next_page: str = "/", forwarded_for: str | None = None
    ) -> ClientResponse:
        """Open the login form (its cookie and token), then post it (with `forwarded_for` as X-Forwarded-For,
        as a proxy would add it); the answer is not followed."""
        form = await self.client.get("/login", params={"next": next_page})
        token = hidden_field(await form.text(), "login_token")
        fields = {"user": user, "password": password, "next": next_page, "login_token": token}
        headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
        return await self.client.post("/login", data=fields, headers=headers, allow_redirects=False)

    async def form_tokens(self, path: str = "/") -> dict[str, str]:
        """The CSRF token and form key of the page at `path` (signed in)."""
        page = await self.client.get(path)
        assert page.status == 200, await page.text()
        html = await page.text()
        tokens = {"csrf": hidden_field(html, "csrf")}
        if 'name="form_key"' in html:
            tokens["form_key"] = hidden_field(html, "form_key")
        return tokens


OpenCommander = Callable[..., AbstractAsyncContextManager[Commander]]


@pytest.fixture
def open_commander(workdir: Path, write_config: WriteConfig, scripts: dict[str, Script]) -> OpenCommander:
    """Opens the service with [auth.users] ann, the scripted channel and `config` added to the file."""

    @asynccontextmanager
    async def serving(config: str = "", *, users: bool = True) -> AsyncIterator[Commander]:
        scripts["scripted"] = script = Script(deliver, targets=["a", "b"])
        registry = REGISTRY.copy()
        registry.register(scripted_spec("scripted"))
        users_table = f'[auth.users]\n{USER} = "{password_hash()}"\n' if users else ""
        write_config(users_table + config)
        runtime = await open_runtime(load_settings(workdir / "broadcaster.toml"), registry=registry)
        try:
            async with (
                Dispatcher(runtime, poll_interval=0.05) as dispatcher,
                TestClient(ServedAsInProduction(create_app(runtime, dispatcher))) as client,
            ):
                yield Commander(client, runtime, script)
        finally:
            await runtime.close()

    return serving


@pytest.fixture
async def commander(open_commander: OpenCommander) -> AsyncIterator[Commander]:
    async with open_commander() as service:
        yield service


# X, email and a webhook target enabled (none reachable: tests that use them pause them or only preview).
OTHER_CHANNELS = """
[x]
enabled = true
consumer_key = "ck"
consumer_secret = "cs"
access_token = "at"
access_token_secret = "ats"
[email]
enabled = true
host = "127.0.0.1"
from_addr = "Status <status@example.com>"
subscribers_file = "subscribers.csv"
[webhook]
enabled = true
[[webhook.targets]]
url = "http://127.0.0.1:9/hook"
name = "ops"
"""
