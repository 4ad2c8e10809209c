"""An OAuth 1.0a (RFC 5849) checker for the fake X API, written from the RFC rather than taken from the
library tweepy signs with, so a test passes only when the two agree."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

REQUIRED: Final = frozenset(
    {
        "oauth_consumer_key",
        "oauth_token",
        "oauth_signature_method",
        "oauth_timestamp",
        "oauth_nonce",
        "oauth_version",
        "oauth_signature",
    }
)
MAX_SKEW: Final = 300
"""Seconds a request's timestamp may differ from the server's clock, as X allows."""
_PARAMETER = re.compile(r'\s*([A-Za-z0-9_]+)="([^"]*)"\s*')


@dataclass(frozen=True, slots=True)
class Credentials:
    consumer_key: str
    consumer_secret: str
    token: str
    token_secret: str


def encode(text: str) -> str:
    """RFC 5849 3.6: percent-encode everything but the unreserved characters, in upper-case hex."""
    return quote(text, safe="~")


def signature(
    method: str, base_url: str, parameters: Iterable[tuple[str, str]], consumer_secret: str, token_secret: str
) -> str:
    """The HMAC-SHA1 signature (RFC 5849 3.4.2) of a request, base64-encoded. `parameters` are the query
    and OAuth parameters (not oauth_signature), decoded."""
    normalized = "&".join(f"{k}={v}" for k, v in sorted((encode(k), encode(v)) for k, v in parameters))
    base_string = "&".join([method.upper(), encode(base_url), encode(normalized)])
    key = f"{encode(consumer_secret)}&{encode(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, base_string.encode(), hashlib.sha1).digest()).decode()


def parse_header(header: str) -> dict[str, str] | str:
    """The parameters of an `Authorization: OAuth ...` header, or what is wrong with it."""
    scheme, _, rest = header.partition(" ")
    if not header:
        return "no Authorization header"
    if scheme != "OAuth":
        return f"not an OAuth header (scheme {scheme!r})"
    parameters: dict[str, str] = {}
    for item in rest.split(","):
        match = _PARAMETER.fullmatch(item)
        if match is None:
            return f"malformed parameter {item.strip()!r}"
        name, value = match.group(1), unquote(match.group(2))
        if name in parameters:
            return f"{name} given twice"
        parameters[name] = value
    return parameters


def check(
    header: str | None,
    *,
    method: str,
    base_url: str,
    query: Iterable[tuple[str, str]],
    expected: Credentials,
    now: float,
    seen_nonces: set[str],
) -> str | None:
    """None when `header` is a well-formed, realm-less OAuth 1.0a HMAC-SHA1 header for these credentials
    whose signature matches the request (and whose nonce is new: it is added to `seen_nonces`); else the
    problem, in words."""
    parameters = parse_header(header or "")
    if isinstance(parameters, str):
        return parameters
    if problem := _shape_problem(parameters, expected, now, seen_nonces):
        return problem
    signed = [(k, v) for k, v in parameters.items() if k != "oauth_signature"]
    wanted = signature(method, base_url, [*query, *signed], expected.consumer_secret, expected.token_secret)
    if not hmac.compare_digest(wanted, parameters["oauth_signature"]):
        return "signature does not match"
    seen_nonces.add(parameters["oauth_nonce"])
    return None


def _shape_problem(parameters: dict[str, str], expected: Credentials, now: float, seen_nonces: set[str]) -> str | None:
    if parameters.keys() != REQUIRED:
        missing, extra = REQUIRED - parameters.keys(), parameters.keys() - REQUIRED
        return f"missing {sorted(missing)}, unexpected {sorted(extra)}"
    timestamp = parameters["oauth_timestamp"]
    problems = {
        "oauth_signature_method": parameters["oauth_signature_method"] != "HMAC-SHA1",
        "oauth_version": parameters["oauth_version"] != "1.0",
        "oauth_consumer_key": parameters["oauth_consumer_key"] != expected.consumer_key,
        "oauth_token": parameters["oauth_token"] != expected.token,
        "oauth_timestamp": not timestamp.isdigit() or abs(int(timestamp) - now) > MAX_SKEW,
        "oauth_nonce": not parameters["oauth_nonce"] or parameters["oauth_nonce"] in seen_nonces,
    }
    wrong = [name for name, bad in problems.items() if bad]
    return f"wrong {', '.join(wrong)}" if wrong else None
