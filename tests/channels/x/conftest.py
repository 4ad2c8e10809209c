"""Fixtures for the X channel: a fake X API over HTTPS (its certificate from a trustme test CA), settings
that pin api.twitter.com to it, and channels built from them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest
import trustme

from channels.base import ChannelContext
from channels.x import XChannel
from config import Settings, load_settings
from tests.channels.x.fake_x import CREDENTIALS, FakeX, serving
from tests.channels.x.jobs import PUBLIC_URL, NoJournal


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def fake(ca: trustme.CA) -> AsyncIterator[FakeX]:
    fake = FakeX()
    async with serving(fake, ca):
        yield fake


Keys = Mapping[str, str | int | float | bool]


class XConfig(Protocol):
    def __call__(self, extra: str = "", *, x: Keys | None = None, retry: Keys | None = None) -> Settings: ...


def _toml_keys(defaults: Keys, overrides: Keys | None) -> str:
    # JSON's strings, numbers and booleans are also TOML's.
    return "\n".join(f"{key} = {json.dumps(value)}" for key, value in {**defaults, **(overrides or {})}.items())


@pytest.fixture
def x_config(write_config: Callable[[str], Path], fake: FakeX, ca_file: Path) -> XConfig:
    """Settings with X enabled and pinned to the fake; `x` overrides [x] keys, `retry` [retry.x] keys,
    `extra` adds whole sections. The mirror is off unless `extra` has a [mirror] section."""

    def build(extra: str = "", *, x: Keys | None = None, retry: Keys | None = None) -> Settings:
        x_keys: Keys = {
            "enabled": True,
            "consumer_key": CREDENTIALS.consumer_key,
            "consumer_secret": CREDENTIALS.consumer_secret,
            "access_token": CREDENTIALS.token,
            "access_token_secret": CREDENTIALS.token_secret,
            "request_timeout": 5,
            "connect_timeout": 2,
        }
        retry_keys: Keys = {"max_attempts": 4, "base_delay": 0.05, "max_delay": 0.2, "timeout": 10}
        text = f"""
[store]
url = "sqlite:///var/broadcaster.db"
[x]
{_toml_keys(x_keys, x)}
[network]
resolve = {{ "api.twitter.com" = "127.0.0.1:{fake.port}" }}
ca_file = "{ca_file}"
[retry.x]
{_toml_keys(retry_keys, retry)}
{extra}
"""
        if "[mirror]" not in extra:
            text += f'[mirror]\nenabled = false\npublic_url = "{PUBLIC_URL}"\n'
        else:
            text = text.replace("[mirror]\n", f'[mirror]\npublic_url = "{PUBLIC_URL}"\n', 1)
        return load_settings(write_config(text))

    return build


@pytest.fixture
async def channel_for(x_config: XConfig) -> AsyncIterator[Callable[..., XChannel]]:
    """Builds XChannels from x_config(...) arguments and closes them after the test."""
    built: list[XChannel] = []

    def build(extra: str = "", *, x: Keys | None = None, retry: Keys | None = None) -> XChannel:
        channel = XChannel.create(ChannelContext(x_config(extra, x=x, retry=retry), NoJournal()))
        built.append(channel)
        return channel

    yield build
    for channel in built:
        await channel.aclose()


@pytest.fixture
def channel(channel_for: Callable[..., XChannel]) -> XChannel:
    return channel_for()


class _NoJournal:
    async def site_history(self, *, recent: int | None) -> list[Any]:
        raise AssertionError("the X channel never reads the journal")
