"""Fixtures shared by the whole suite: a private working directory, a real SQLite journal in it, a real
redis-server for the session (emptied for each test that asks for it), and a clean slate of scripted test
channels."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

import pytest

from broadcaster.store.sqlite import SqliteStore
from tests.support.channels import SCRIPTS, Script
from tests.support.redis import RedisServer

pytest_plugins = ["tests.support.browser"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own working directory, with no BROADCASTER_* variables leaking in from outside."""
    for name in list(os.environ):
        if name.startswith("BROADCASTER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class WriteConfig(Protocol):
    def __call__(self, text: str, name: str = "broadcaster.toml") -> Path: ...


@pytest.fixture
def write_config(workdir: Path) -> WriteConfig:
    def write(text: str, name: str = "broadcaster.toml") -> Path:
        path = workdir / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    journal = SqliteStore(tmp_path / "journal" / "broadcaster.db", url="sqlite:///journal/broadcaster.db")
    await journal.open()
    yield journal
    await journal.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis-server, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(autouse=True)
def scripts() -> Iterator[dict[str, Script]]:
    SCRIPTS.clear()
    yield SCRIPTS
    SCRIPTS.clear()
