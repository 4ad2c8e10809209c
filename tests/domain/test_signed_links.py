"""Signed links: genuine ones open, altered, cut, re-purposed, foreign-key and expired ones are refused."""

from __future__ import annotations

import base64
import json

import pytest

from broadcaster.domain.signed_links import LinkExpired, LinkRefused, seal, unseal

KEY = b"k" * 32


def test_a_genuine_link_gives_back_its_claims_until_it_expires() -> None:
    token = seal(KEY, "confirm", {"email": "ann@example.org", "components": ["API"]}, until=1_000)
    assert unseal(KEY, "confirm", token, now=999) == {"email": "ann@example.org", "components": ["API"]}
    with pytest.raises(LinkExpired, match="expired"):
        unseal(KEY, "confirm", token, now=1_001)


def test_a_link_without_expiry_stays_valid() -> None:
    token = seal(KEY, "manage", {"email": "ann@example.org"}, until=None)
    assert unseal(KEY, "manage", token, now=10**12) == {"email": "ann@example.org"}


def test_a_link_made_for_one_purpose_is_refused_for_another() -> None:
    token = seal(KEY, "confirm", {"email": "ann@example.org"}, until=None)
    with pytest.raises(LinkRefused, match="not valid"):
        unseal(KEY, "manage", token, now=0)


def test_a_link_signed_with_another_key_is_refused() -> None:
    token = seal(b"other key", "manage", {"email": "ann@example.org"}, until=None)
    with pytest.raises(LinkRefused, match="not valid"):
        unseal(KEY, "manage", token, now=0)


def test_changing_the_address_in_a_link_breaks_it() -> None:
    payload, signature = seal(KEY, "manage", {"email": "ann@example.org"}, until=None).split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["email"] = "bob@example.org"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(LinkRefused, match="not valid"):
        unseal(KEY, "manage", f"{forged}.{signature}", now=0)


@pytest.mark.parametrize("token", ["", "abc", "abc.", "!!!.???", "é.é", "a" * 7000 + ".b"])
def test_cut_or_garbled_links_are_refused_with_a_hint(token: str) -> None:
    with pytest.raises(LinkRefused):
        unseal(KEY, "manage", token, now=0)


def test_a_stranger_s_payload_is_never_parsed() -> None:
    """Deeply nested JSON under a made-up signature is refused by the signature, not by a crash in parsing."""
    payload = base64.urlsafe_b64encode(b"[" * 1500).rstrip(b"=").decode()
    with pytest.raises(LinkRefused, match="not valid"):
        unseal(KEY, "manage", f"{payload}.{'A' * 43}", now=0)


def test_claims_too_long_for_a_link_are_refused_when_sealing() -> None:
    with pytest.raises(ValueError, match="too long"):
        seal(KEY, "confirm", {"components": ["x" * 100] * 60}, until=None)
