"""The gate's parts on their own: signed tokens, login failure limits, clients behind proxies, passwords,
and `broadcaster user add`."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from aiohttp.test_utils import make_mocked_request

from broadcaster.web.auth.clients import client_address
from broadcaster.web.auth.limits import FailureLimit
from broadcaster.web.auth.passwords import hash_password, password_matches
from broadcaster.web.auth.signing import Signer
from config import load_settings
from tests.support.helpers import run_cli


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_signed_token_is_bound_to_its_purpose_and_expires() -> None:
    clock = Clock()
    signer = Signer(b"k" * 32, clock=clock)
    token = signer.sign("session", "ann~abc", lifetime=60)
    assert signer.verify("session", token) == "ann~abc"
    assert signer.verify("csrf", token) is None  # one kind never stands in for another
    assert Signer(b"other" * 8, clock=clock).verify("session", token) is None
    payload, expiry, mac = token.split(".")
    assert signer.verify("session", f"bob~abc.{expiry}.{mac}") is None  # tampered payload
    assert signer.verify("session", f"{payload}.{int(expiry) + 3600}.{mac}") is None  # stretched expiry
    clock.now += 61
    assert signer.verify("session", token) is None


def test_failures_are_limited_per_key_over_a_sliding_window() -> None:
    clock = Clock()
    limit = FailureLimit(allowed=3, window=100, clock=clock)
    for _ in range(3):
        assert limit.blocked_for("ann") == 0
        limit.failed("ann")
    assert limit.blocked_for("ann") == 100
    assert limit.blocked_for("bob") == 0
    clock.now += 60
    assert limit.blocked_for("ann") == 40
    clock.now += 41
    assert limit.blocked_for("ann") == 0
    limit.failed("bob")
    limit.succeeded("bob")
    assert limit.blocked_for("bob") == 0


def test_memory_for_failures_is_bounded() -> None:
    limit = FailureLimit(allowed=1, window=100, max_keys=10, clock=Clock())
    for n in range(50):
        limit.failed(f"client-{n}")
    assert limit.blocked_for("client-49") > 0
    assert limit.blocked_for("client-0") == 0  # forgotten, the oldest first


def test_the_client_is_believed_from_trusted_proxies_only() -> None:
    trusted = [ipaddress.ip_network("10.0.0.0/8")]
    via_proxy = make_mocked_request("GET", "/", headers={"X-Forwarded-For": "203.0.113.7, 10.1.2.3"})
    via_proxy._transport_peername = ("10.0.0.5", 4000)
    assert client_address(via_proxy, trusted) == "203.0.113.7"
    assert client_address(via_proxy, []) == "10.0.0.5"  # no proxy trusted: the header means nothing
    direct = make_mocked_request("GET", "/", headers={"X-Forwarded-For": "198.51.100.1"})
    direct._transport_peername = ("192.0.2.9", 4000)
    assert client_address(direct, trusted) == "192.0.2.9"  # a client cannot name itself


def test_passwords_are_argon2_hashes() -> None:
    hashed = hash_password("correct-horse-staple")
    assert hashed.startswith("$argon2id$")
    assert password_matches(hashed, "correct-horse-staple")
    assert not password_matches(hashed, "wrong")
    assert not password_matches(None, "anything")
    assert not password_matches("not a hash", "anything")


def test_user_add_prints_a_hash_the_configuration_accepts(tmp_path: Path) -> None:
    made = run_cli("user", "add", "ann", "--password-stdin", cwd=tmp_path, stdin="correct-horse-staple\n")
    assert made.returncode == 0, made.stderr
    line = next(line for line in made.stdout.splitlines() if line.startswith("ann = "))
    assert "correct-horse-staple" not in made.stdout + made.stderr
    config = tmp_path / "broadcaster.toml"
    config.write_text(f"[auth.users]\n{line}\n")
    stored = load_settings(config).auth.users["ann"].get_secret_value()
    assert password_matches(stored, "correct-horse-staple")
    short = run_cli("user", "add", "bob", "--password-stdin", cwd=tmp_path, stdin="short\n")
    assert short.returncode == 2
    assert "at least 10 characters" in short.stderr
