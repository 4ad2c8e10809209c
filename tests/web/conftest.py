"""The service's application over a real journal and running lanes, served on loopback (aiohttp's test server)
with a test client talking HTTP to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Handler, Middleware
from jsonschema import Draft202012Validator

from broadcaster.dispatch import Dispatcher
from broadcaster.runtime import Runtime, open_runtime
from broadcaster.web import api, create_app
from broadcaster.web.openapi import document
from channels.registry import REGISTRY
from config import load_settings
from tests.conftest import WriteConfig
from tests.support.channels import Script, deliver, scripted_spec

TOKEN = "t0ken-deploy-bot-5c1a9e"
OTHER_TOKEN = "t0ken-pager-77b2d0"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

Client = TestClient[web.Request, web.Application]


@dataclass
class Service:
    client: Client
    runtime: Runtime
    script: Script


@pytest.fixture
async def service(workdir: Path, write_config: WriteConfig, scripts: dict[str, Script]) -> AsyncIterator[Service]:
    """Mirror and a scripted channel (targets a and b) on; two named API tokens."""
    scripts["scripted"] = script = Script(deliver, targets=["a", "b"])
    registry = REGISTRY.copy()
    registry.register(scripted_spec("scripted"))
    write_config(
        f'[auth]\napi_tokens = {{ deploy-bot = "{TOKEN}", pager = "{OTHER_TOKEN}" }}\n'
        'snapshot_tokens = ["deploy-bot"]\n'
    )
    runtime = await open_runtime(load_settings(workdir / "broadcaster.toml"), registry=registry)
    answered: set[tuple[str, str, int]] = set()
    try:
        async with Dispatcher(runtime, poll_interval=0.05) as dispatcher:
            app = create_app(runtime, dispatcher)
            app.middlewares.insert(0, recording_api_answers(answered))
            async with TestClient(TestServer(app)) as client:
                yield Service(client, runtime, script)
    finally:
        await runtime.close()
    # Whatever the test made the API answer, the OpenAPI document says it may.
    documented = document()["paths"]
    assert [
        (method, path, status)
        for method, path, status in sorted(answered)
        if str(status) not in documented[path.removeprefix(api.PREFIX)][method.lower()]["responses"]
    ] == []


def recording_api_answers(answered: set[tuple[str, str, int]]) -> Middleware:
    """A middleware noting each API operation's answer as (method, route, status), outside every other."""

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else ""
        operation = route.startswith(api.PREFIX) and route != f"{api.PREFIX}/openapi.json"
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if operation:
                answered.add((request.method, route, exc.status))
            raise
        if operation:
            answered.add((request.method, route, response.status))
        return response

    return record


def conforms(body: Any, model: str) -> None:
    """`body` is valid against the OpenAPI document's schema `model`: what the API answers is what it says."""
    openapi = document()
    schema = {"$ref": f"#/components/schemas/{model}", "components": openapi["components"]}
    Draft202012Validator(schema).validate(body)
