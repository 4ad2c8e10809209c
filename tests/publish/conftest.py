"""Servers to publish to: moto's S3 server for the session, a bucket and a steerable proxy per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.publish.servers import KEY_ID, SECRET, MotoServer, S3Proxy
from tests.publish.sshd import SshServer


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    name = f"status-{secrets.token_hex(4)}"
    moto.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[S3Proxy]:
    started = S3Proxy(moto.url).start()
    try:
        yield started
    finally:
        started.stop()


def s3_config(bucket: str, endpoint: str, *, extra: str = "") -> str:
    """A mirror into ./public that also publishes to `bucket` at `endpoint`."""
    return (
        '[mirror]\ndirectories = ["public"]\n\n[[mirror.publish]]\nkind = "s3"\nname = "bucket"\n'
        f'bucket = "{bucket}"\nendpoint_url = "{endpoint}"\naccess_key_id = "{KEY_ID}"\n'
        f'secret_access_key = "{SECRET}"\n{extra}'
    )


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    server = SshServer().start()
    try:
        yield server
    finally:
        server.close()
