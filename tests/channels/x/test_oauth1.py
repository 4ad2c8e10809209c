"""The fake X API's OAuth 1.0a checker: it must agree with RFC 5849 and with an independent signer."""

from __future__ import annotations

from oauthlib.oauth1 import Client  # type: ignore[import-untyped] # tweepy's signer; no stubs

from tests.channels.x.oauth1 import Credentials, check, signature

URL = "https://api.twitter.com/2/users/me"
CREDENTIALS = Credentials("dpf43f3p2l4k3l03", "kd94hf93k423kf44", "nnch734d00sl2jdk", "pfkkdhi9sl3r4s00")


def signed_header(url: str = URL, *, nonce: str = "n0nce", timestamp: str = "1700000000") -> str:
    client = Client(
        CREDENTIALS.consumer_key,
        CREDENTIALS.consumer_secret,
        CREDENTIALS.token,
        CREDENTIALS.token_secret,
        nonce=nonce,
        timestamp=timestamp,
    )
    _url, headers, _body = client.sign(url, "GET")
    return str(headers["Authorization"])


def test_signature_matches_the_rfc_example() -> None:
    """RFC 5849 section 1.2's photo request signs to the RFC's published signature."""
    parameters = [
        ("file", "vacation.jpg"),
        ("size", "original"),
        ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
        ("oauth_token", "nnch734d00sl2jdk"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", "137131202"),
        ("oauth_nonce", "chapoH"),
    ]
    got = signature("GET", "http://photos.example.net/photos", parameters, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00")
    assert got == "MdpQcU8iPSUjWoN/UDMsK2sui9I="


def verdict(
    header: str | None,
    *,
    method: str = "GET",
    base_url: str = URL,
    query: list[tuple[str, str]] | None = None,
    expected: Credentials = CREDENTIALS,
    now: float = 1700000000,
    nonces: set[str] | None = None,
) -> str | None:
    return check(
        header,
        method=method,
        base_url=base_url,
        query=query or [],
        expected=expected,
        now=now,
        seen_nonces=set() if nonces is None else nonces,
    )


def test_a_header_signed_by_oauthlib_passes_once() -> None:
    """A correctly signed request passes; the same nonce again is a replay and fails."""
    nonces: set[str] = set()
    header = signed_header()
    assert verdict(header, now=1700000100, nonces=nonces) is None
    assert verdict(header, now=1700000100, nonces=nonces) == "wrong oauth_nonce"


def test_tampering_or_staleness_fails() -> None:
    """Another URL, query, method, secret, a stale timestamp, a realm or no header each fail with a reason."""
    header = signed_header()
    other_secret = Credentials(CREDENTIALS.consumer_key, "another-secret", CREDENTIALS.token, CREDENTIALS.token_secret)
    assert verdict(header, base_url="https://api.twitter.com/2/tweets") == "signature does not match"
    assert verdict(header, query=[("user.fields", "id")]) == "signature does not match"
    assert verdict(header, method="POST") == "signature does not match"
    assert verdict(header, expected=other_secret) == "signature does not match"
    assert verdict(header, now=1700000000 + 301) == "wrong oauth_timestamp"
    assert verdict(None) == "no Authorization header"
    assert verdict(header.replace("OAuth ", 'OAuth realm="x", ')) == "missing [], unexpected ['realm']"
