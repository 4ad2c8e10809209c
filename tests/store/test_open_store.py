"""Choosing the journal backend by URL, and refusing a URL that names none, without showing its password."""

from __future__ import annotations

import re

import pytest

from broadcaster.domain.errors import StoreError
from broadcaster.store import open_store
from broadcaster.store.redis import RedisStore
from broadcaster.store.sqlite import SqliteStore


def test_the_scheme_chooses_the_backend() -> None:
    assert isinstance(open_store("sqlite:///var/j.db"), SqliteStore)
    assert isinstance(open_store("redis://127.0.0.1:6379/0"), RedisStore)
    assert isinstance(open_store("rediss://127.0.0.1:6380/0"), RedisStore)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis//:s3cret-pw@cache.internal", "has no scheme"),
        ("redis+sentinel://:s3cret-pw@cache.internal/0", "unsupported scheme 'redis+sentinel'"),
        ("postgres://admin:s3cret-pw@db/broadcaster", "unsupported scheme 'postgres'"),
    ],
)
def test_a_url_naming_no_backend_is_refused_without_its_password(url: str, problem: str) -> None:
    with pytest.raises(StoreError, match=re.escape(problem)) as refused:
        open_store(url)
    assert "s3cret-pw" not in str(refused.value)
    assert "***@" in str(refused.value)
