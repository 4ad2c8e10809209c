"""Publishing to any S3-compatible store over aiohttp, each request signed with SigV4 (sigv4.py).

One PUT per changed file (a PUT replaces an object whole, so a reader sees the old file or the new) with
its Content-Type and Cache-Control, one DELETE per file the site no longer has."""

from __future__ import annotations

import configparser
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import aiohttp
from yarl import URL

from channels.base import PermanentError, TransientError
from channels.mirror.publish.manifest import digest
from channels.mirror.publish.sigv4 import Credentials, sign, uri_path
from channels.transport.http import client_session
from config.publish import S3Target
from config.sections import NetworkSettings

CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".atom": "application/atom+xml",
    ".xml": "application/xml",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
SHORT_CACHE: Final = "public, max-age=30"
"""The index, the JSON and the feed change with every update: caches must look again soon."""
PAGE_CACHE: Final = "public, max-age=300"
"""An incident's own page changes only with that incident."""
EMPTY_SHA256: Final = digest(b"")
_ERROR_CODE: Final = re.compile(rb"<Code>([^<]{1,64})</Code>")
# A refusal that waiting cannot cure: wrong keys, no such bucket, a policy that denies.
_PERMANENT_STATUSES: Final = {400, 401, 403, 404, 405, 411}
_STALE_CREDENTIALS: Final = frozenset(
    {b"ExpiredToken", b"InvalidAccessKeyId", b"InvalidToken", b"TokenRefreshRequired"}
)
"""Refusals of keys that may since have been rotated in the environment or the credentials file."""


def content_type(path: str) -> str:
    return CONTENT_TYPES.get(Path(path).suffix, "application/octet-stream")


def cache_control(path: str) -> str:
    return PAGE_CACHE if path.startswith("incidents/") and path.endswith(".html") else SHORT_CACHE


def credentials_for(settings: S3Target) -> Credentials:
    """The target's own keys, else the standard chain: AWS_* environment variables, then the shared
    credentials file's profile (AWS_PROFILE, else "default"). Raises PermanentError when none is found."""
    if settings.access_key_id is not None and settings.secret_access_key is not None:
        token = settings.session_token.get_secret_value() if settings.session_token else None
        return Credentials(
            settings.access_key_id.get_secret_value(), settings.secret_access_key.get_secret_value(), token
        )
    key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        return Credentials(key_id, secret, os.environ.get("AWS_SESSION_TOKEN") or None)
    profile = os.environ.get("AWS_PROFILE", "default")
    path = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    parser = configparser.RawConfigParser()
    parser.read(path)
    if parser.has_option(profile, "aws_access_key_id") and parser.has_option(profile, "aws_secret_access_key"):
        token = parser.get(profile, "aws_session_token", fallback=None)
        return Credentials(
            parser.get(profile, "aws_access_key_id"), parser.get(profile, "aws_secret_access_key"), token
        )
    raise PermanentError(
        f"no S3 credentials: set access_key_id and secret_access_key, AWS_ACCESS_KEY_ID and "
        f"AWS_SECRET_ACCESS_KEY, or profile {profile!r} in {path}"
    )


def bucket_url(settings: S3Target) -> URL:
    """Path-style on a configured endpoint (and for AWS buckets with dots, which TLS cannot take in a host
    name); virtual-hosted on AWS otherwise."""
    if settings.endpoint_url:
        return URL(settings.endpoint_url) / settings.bucket
    if "." in settings.bucket:
        return URL(f"https://s3.{settings.region}.amazonaws.com") / settings.bucket
    return URL(f"https://{settings.bucket}.s3.{settings.region}.amazonaws.com")


def host_header(url: URL) -> str:
    """The Host header (and signed host) for `url`: an IPv6 address in brackets, a port unless the default."""
    host = url.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    return host if url.is_default_port() else f"{host}:{url.port}"


class S3Remote:
    def __init__(self, settings: S3Target, network: NetworkSettings) -> None:
        self.settings = settings
        self.concurrency = settings.concurrency
        self._network = network
        self._base = bucket_url(settings)
        self._session: aiohttp.ClientSession | None = None
        self._credentials: Credentials | None = None

    async def put(self, path: str, content: bytes) -> None:
        headers = {"Content-Type": content_type(path), "Cache-Control": cache_control(path)}
        await self._request("PUT", self.settings.prefix + path, content, headers)

    async def delete(self, path: str) -> None:
        await self._request("DELETE", self.settings.prefix + path, b"", {})

    async def check(self) -> str:
        """Writes and deletes a probe object beside the site (never one of its files)."""
        probe = f"{self.settings.prefix}.broadcaster-check-{secrets.token_hex(4)}"
        await self._request("PUT", probe, b"ok\n", {"Content-Type": "text/plain"})
        await self._request("DELETE", probe, b"", {})
        return f"bucket {self.settings.bucket} reachable, credentials accepted, writable"

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, key: str, body: bytes, headers: dict[str, str]) -> None:
        """Send one request; keys refused as expired or unknown are read again once (rotated keys, a renewed
        session token) before the refusal stands. Raises DeliveryError."""
        status, answer, retry_after = await self._send(method, key, body, headers)
        if status is None:
            return
        code = _ERROR_CODE.search(answer)
        if code and code.group(1) in _STALE_CREDENTIALS and self._credentials is not None:
            self._credentials = None
            status, answer, retry_after = await self._send(method, key, body, headers)
            if status is None:
                return
        self._refused(method, key, status, answer, retry_after)

    async def _send(
        self, method: str, key: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, bytes, str | None]:
        """(None, b"", None) once the store took the request; else its status, the start of its answer and
        its Retry-After. Raises TransientError when it does not answer."""
        url = self._base.joinpath(key, encoded=False) if key else self._base
        path = uri_path(url.path)
        host = host_header(url)
        signed = sign(
            method=method,
            host=host,
            path=path,
            headers={},
            payload_sha256=digest(body) if body else EMPTY_SHA256,
            credentials=self._credentials or self._resolve(),
            region=self.settings.region,
            now=datetime.now(UTC),
        )
        try:
            async with self.session.request(
                method,
                url.with_path(path, encoded=True),
                data=body if method == "PUT" else None,
                headers={**headers, **signed, "Host": host},
            ) as response:
                if response.status < 300 or (method == "DELETE" and response.status == 404):
                    await response.read()
                    return None, b"", None
                answer = await response.content.read(4096)
                return response.status, answer, response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"{method} {key}: {type(exc).__name__}: {exc or 'timed out'}") from None

    def _refused(self, method: str, key: str, status: int, answer: bytes, retry_after: str | None) -> None:
        code = _ERROR_CODE.search(answer)
        reason = f"{method} {key} in bucket {self.settings.bucket}: HTTP {status}" + (
            f" {code.group(1).decode(errors='replace')}" if code else ""
        )
        if status in _PERMANENT_STATUSES:
            raise PermanentError(reason)
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise TransientError(reason, retry_after=delay)

    def _resolve(self) -> Credentials:
        self._credentials = credentials_for(self.settings)
        return self._credentials

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.timeout, connect=min(10.0, self.settings.timeout))
            self._session = client_session(self._network, limit=self.concurrency, timeout=timeout)
        return self._session
