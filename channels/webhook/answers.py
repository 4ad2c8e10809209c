"""How the webhook channel reads an answer: the status classified into delivered / transient / permanent /
gone, Retry-After honoured, a capped and sanitised quote of the body, and transport failures described
without the URL (incoming-webhook URLs carry their secret in the path)."""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from broadcaster.domain.errors import os_reason
from broadcaster.domain.text import printable
from channels.base import PermanentError, TargetGone, TransientError

BODY_CAP: Final = 64 * 1024
"""Bytes of a response body read at most; the rest is never downloaded."""
SNIPPET_CHARS: Final = 200
"""Characters of a response body quoted in an error."""
RETRY_AFTER_CAP: Final = 86400.0
"""A longer Retry-After is taken as a day: the delivery's time-to-live decides what happens then."""
_MOVED_FOR_GOOD: Final = (301, 308)
_RETRYABLE_CLIENT_ERRORS: Final = (408, 429)
_NOT_PRINTABLE: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+")


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 10.2.3), never
    negative, at most RETRY_AFTER_CAP; None when absent or unreadable (the lane's backoff applies)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" or no zone: HTTP-dates are always GMT
        return None
    return min(max(0.0, when.timestamp() - now), RETRY_AFTER_CAP)


async def read_capped(response: aiohttp.ClientResponse, cap: int = BODY_CAP) -> bytes:
    """Up to `cap` bytes of the body; a body read to its end lets the connection be reused."""
    if response.content_length is not None and response.content_length <= cap:
        return await response.read()  # the usual short answer, declared and framed by its length: one read
    chunks: list[bytes] = []
    size = 0
    while size < cap:
        chunk = await response.content.read(cap - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def snippet(raw: bytes, *, scrub: Callable[[str], str] = str) -> str:
    """A short single-line quote of a response body, without control characters, passed through `scrub`
    (the settings' scrubber) as received and before it is cut short, so no secret is left half-masked."""
    text = scrub(raw[: SNIPPET_CHARS * 4].decode("utf-8", errors="replace"))
    text = " ".join(_NOT_PRINTABLE.sub(" ", text).split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"


def origin(location: str | None) -> str:
    """Where a redirect points, as scheme://host[:port] only: its path may carry a secret too."""
    if not location:
        return "nowhere (no Location header)"
    parts = urlsplit(location)
    if not parts.netloc:
        return "another path on the same host"
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def raise_for_answer(
    status: int, reason: str, *, body: str = "", retry_after: float | None = None, location: str | None = None
) -> None:
    """Return for a 2xx; otherwise raise the classified error, quoting `body`.

    410 is TargetGone (the receiver asks to stop: the lane pauses the target). 301/308 are permanent: the
    URL moved for good and a redirect is never followed, so only a configuration change helps. Other 3xx
    (a temporary redirect), 408, 429, 5xx and anything non-standard are transient, honouring Retry-After.
    Any other 4xx is permanent: the receiver refused this request and would refuse it again."""
    if 200 <= status < 300:
        return
    what = f"HTTP {status} {printable(reason)}".rstrip() + (f": {body}" if body else "")
    if status == 410:
        raise TargetGone(f"{what} (the receiver no longer wants these deliveries)")
    if status in _MOVED_FOR_GOOD:
        raise PermanentError(
            f"{what} (moved for good to {origin(location)}; redirects are not followed: update the target's url)"
        )
    if 300 <= status < 400:
        raise TransientError(
            f"{what} (temporary redirect to {origin(location)} not followed; the configured url is retried)",
            retry_after=retry_after,
        )
    if 400 <= status < 500 and status not in _RETRYABLE_CLIENT_ERRORS:
        raise PermanentError(f"{what} (refused: retrying the same request cannot help)")
    raise TransientError(what, retry_after=retry_after)


def describe_failure(exc: BaseException, *, timeout: float, url: str) -> str:
    """A transport failure in words, with no URL in them (aiohttp puts the URL in some messages)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _connect_failure(exc)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"unreadable answer: {exc.status} {exc.message}"
    text = str(exc)
    path = urlsplit(url).path
    for part in (url, path if len(path) > 1 else ""):
        if part:
            text = text.replace(part, "<url>")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _connect_failure(exc: aiohttp.ClientConnectorError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate of {exc.host} not trusted: {_ssl_reason(exc.certificate_error)}"
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return f"TLS handshake with {exc.host} failed: {_ssl_reason(exc.os_error)}"
    return f"cannot connect to {exc.host}:{exc.port}: {os_reason(exc.os_error)}"


def _ssl_reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return error.verify_message
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason)
    return str(error) or type(error).__name__
