"""The gate's parts on their own: signed tokens, login failure limits, password checks off the event loop,
sessions ended by a new password, login links, clients behind proxies, passwords, and `broadcaster user add`."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from broadcaster.store import Store
from broadcaster.web.auth import passwords
from broadcaster.web.auth.clients import client_address, limit_key
from broadcaster.web.auth.gate import LINK_USER, LOGIN_LINK_LIFETIME, SESSION_COOKIE, Gate
from broadcaster.web.auth.limits import (
    LOGIN_FAILURES_PER_CLIENT,
    LOGIN_FAILURES_PER_USER,
    LOGIN_FAILURES_PER_USER_AND_CLIENT,
    LOGIN_FAILURES_PER_USER_CAP,
    LOGIN_WINDOW,
    FailureLimit,
    LoginLimits,
)
from broadcaster.web.auth.passwords import PasswordChecks, hash_password, password_matches
from broadcaster.web.auth.signing import Signer
from config import load_settings
from tests.support.helpers import eventually, run_cli


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
    limit = FailureLimit[str](allowed=3, window=100, clock=clock)
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
    limit.forget("bob")
    assert limit.blocked_for("bob") == 0


def test_memory_for_failures_is_bounded() -> None:
    limit = FailureLimit[str](allowed=1, window=100, max_keys=10, clock=Clock())
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


def test_a_token_that_is_not_ascii_is_refused() -> None:
    signer = Signer(b"k" * 32, clock=Clock())
    token = signer.sign("session", "ann~abc", lifetime=60)
    payload, expiry, mac = token.split(".")
    arabic_indic_one = "\u0661"  # str.isdigit() says yes, int() reads 1
    forged_tokens = ("a.1.é", f"{payload}é.{expiry}.{mac}", f"{payload}.{expiry}.{mac[:-1]}é")
    for forged in (*forged_tokens, f"{payload}.{arabic_indic_one}.{mac}"):
        assert signer.verify("session", forged) is None
    with pytest.raises(ValueError, match="ASCII"):
        signer.sign("session", "é", lifetime=60)


def test_a_user_under_attack_stays_open_to_clients_that_have_not_failed() -> None:
    clock = Clock()
    limits = LoginLimits(clock=clock)
    for n in range(LOGIN_FAILURES_PER_USER):
        assert limits.blocked_for("ann", f"guesser-{n}") == 0
        limits.failed("ann", f"guesser-{n}")
    assert limits.blocked_for("ann", "commander") == 0
    assert limits.blocked_for("bob", "guesser-0") == 0  # the per-user limit is about ann only
    assert limits.blocked_for("ann", "guesser-0") == LOGIN_WINDOW
    clock.now += 60
    limits.failed("ann", "guesser-9")  # its own last failure is the later one: it waits for that to clear
    assert limits.blocked_for("ann", "guesser-9") == LOGIN_WINDOW - 60
    clock.now += LOGIN_WINDOW - 60  # the first failures slide out: ann is no longer under attack
    assert limits.blocked_for("ann", "guesser-9") == 0


def test_a_user_guessed_from_too_many_addresses_is_open_only_to_browsers_that_signed_in_before() -> None:
    limits = LoginLimits(clock=Clock())
    for n in range(LOGIN_FAILURES_PER_USER_CAP - 1):
        limits.failed("ann", f"guesser-{n}")
    assert limits.blocked_for("ann", "commander") == 0  # below the cap, a client that never failed may try
    limits.failed("ann", "guesser-last")
    assert limits.blocked_for("ann", "commander") == LOGIN_WINDOW
    assert limits.blocked_for("ann", "commander", known_device=True) == 0
    assert limits.blocked_for("bob", "commander") == 0
    # A known device still has its own limit: a stolen device cookie is no way round the per-client limits.
    for _ in range(LOGIN_FAILURES_PER_USER_AND_CLIENT):
        limits.failed("ann", "stolen-cookie")
    assert limits.blocked_for("ann", "stolen-cookie", known_device=True) == LOGIN_WINDOW


def test_an_ipv6_client_is_limited_as_its_64() -> None:
    assert limit_key("2001:db8:1:2:3:4:5:6") == limit_key("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::9") == "2001:db8:1:3::/64"
    assert limit_key("fe80::1%eth0") == "fe80::/64"
    assert limit_key("::ffff:203.0.113.7") == limit_key("203.0.113.7") == "203.0.113.7"
    assert limit_key("not an address") == "not an address"


def test_one_client_is_limited_per_user_and_across_users() -> None:
    limits = LoginLimits(clock=Clock())
    for _ in range(LOGIN_FAILURES_PER_USER_AND_CLIENT):
        limits.failed("ann", "here")
    assert limits.blocked_for("ann", "here") == LOGIN_WINDOW
    assert limits.blocked_for("ann", "elsewhere") == 0
    for n in range(LOGIN_FAILURES_PER_CLIENT - LOGIN_FAILURES_PER_USER_AND_CLIENT):
        assert limits.blocked_for(f"user-{n}", "here") == 0
        limits.failed(f"user-{n}", "here")
    assert limits.blocked_for("never-tried", "here") == LOGIN_WINDOW


def test_a_success_takes_back_the_failure_counted_ahead_of_its_check() -> None:
    limits = LoginLimits(clock=Clock())
    for n in range(LOGIN_FAILURES_PER_CLIENT - 1):
        limits.failed(f"user-{n}", "here")
    limits.failed("ann", "here")  # counted before the check...
    assert limits.blocked_for("someone", "here") > 0
    limits.succeeded("ann", "here")  # ...and taken back when it passed
    assert limits.blocked_for("someone", "here") == 0
    limits.failed("someone", "here")  # the client's earlier failures still count
    assert limits.blocked_for("ann", "here") > 0


class HeldChecks:
    """Stands in for password_matches: each call waits on its own event (by order of arrival) in the thread
    the check runs in, noting how many calls had finished when it began."""

    def __init__(self, calls: int) -> None:
        self.releases = [threading.Event() for _ in range(calls)]
        self.finished_before_each: list[int] = []
        self._finished = 0
        self._lock = threading.Lock()

    def __call__(self, stored_hash: str | None, password: str) -> bool:
        with self._lock:
            call = len(self.finished_before_each)
            self.finished_before_each.append(self._finished)
        self.releases[call].wait(timeout=30)
        with self._lock:
            self._finished += 1
        return True

    async def began(self, calls: int) -> None:
        async def enough() -> bool:
            return len(self.finished_before_each) >= calls

        await eventually(enough)

    def release_all(self) -> None:
        for release in self.releases:
            release.set()


@pytest.fixture
def held_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[int], HeldChecks]]:
    """Password checks held until released (all released at the end, so a failing test ends at once)."""
    made: list[HeldChecks] = []

    def hold(calls: int) -> HeldChecks:
        made.append(held := HeldChecks(calls))
        monkeypatch.setattr(passwords, "password_matches", held)
        return held

    yield hold
    for held in made:
        held.release_all()


async def test_a_password_check_leaves_the_event_loop_free(held_checks: Callable[[int], HeldChecks]) -> None:
    held = held_checks(1)
    check = asyncio.create_task(PasswordChecks().matches(None, "pw"))
    try:
        await held.began(1)
        assert not check.done()  # this line runs on the loop while the check is still held in its thread
    finally:
        held.release_all()
    assert await check


async def test_no_more_password_checks_run_at_once_than_allowed(held_checks: Callable[[int], HeldChecks]) -> None:
    held = held_checks(3)
    checks = PasswordChecks(at_once=2)
    running = [asyncio.create_task(checks.matches(None, "pw")) for _ in range(3)]
    try:
        await held.began(2)
        held.releases[0].set()
        await held.began(3)
        assert held.finished_before_each == [0, 0, 1]  # the third began only once the first was done
    finally:
        held.release_all()
    assert all(await asyncio.gather(*running))


async def test_a_check_given_up_on_keeps_its_slot_until_its_thread_is_done(
    held_checks: Callable[[int], HeldChecks],
) -> None:
    held = held_checks(2)
    checks = PasswordChecks(at_once=1)
    abandoned = asyncio.create_task(checks.matches(None, "pw"))
    next_check = None
    try:
        await held.began(1)
        abandoned.cancel()  # a request timed out: its thread still runs the check
        await asyncio.wait([abandoned])
        next_check = asyncio.create_task(checks.matches(None, "pw"))
        await asyncio.sleep(0)  # its turn on the loop: had the slot been freed, its check would begin now
        held.releases[0].set()
        await held.began(2)
        assert held.finished_before_each == [0, 1]
    finally:
        held.release_all()
    assert await next_check


def gate_with_users(tmp_path: Path, users: dict[str, str], store: Store, clock: Clock | None = None) -> Gate:
    config = tmp_path / "broadcaster.toml"
    config.write_text("[auth.users]\n" + "".join(f'{name} = "{stored}"\n' for name, stored in users.items()))
    return Gate(load_settings(config), b"k" * 32, store, clock=clock or Clock())


def session_cookie(gate: Gate, user: str) -> str:
    response = web.Response()
    gate.start_session(response, user, make_mocked_request("GET", "/"))
    return response.cookies[SESSION_COOKIE].value


def with_cookie(cookie: str) -> web.Request:
    return make_mocked_request("GET", "/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})


async def test_a_new_password_ends_the_sessions_signed_in_with_the_old_one(tmp_path: Path, store: Store) -> None:
    old = hash_password("correct-horse-staple")
    cookie = session_cookie(gate_with_users(tmp_path, {"ann": old}, store), "ann")
    restarted = gate_with_users(tmp_path, {"ann": old}, store)
    assert await restarted.session(with_cookie(cookie)) is not None  # the same password: the session goes on
    changed = gate_with_users(tmp_path, {"ann": hash_password("another-horse-staple")}, store)
    assert await changed.session(with_cookie(cookie)) is None
    removed = gate_with_users(tmp_path, {"bob": old}, store)
    assert await removed.session(with_cookie(cookie)) is None


async def test_a_login_link_expires_and_its_session_needs_no_user_to_exist(tmp_path: Path, store: Store) -> None:
    clock = Clock()
    gate = gate_with_users(tmp_path, {}, store, clock)
    late = gate.login_link_token()
    clock.now += LOGIN_LINK_LIFETIME + 1
    assert not await gate.redeem_login_link(late)
    in_time = gate.login_link_token()
    assert await gate.redeem_login_link(in_time)
    cookie = session_cookie(gate, LINK_USER)
    assert await gate.session(with_cookie(cookie)) is not None
    with_a_user = gate_with_users(tmp_path, {"ann": hash_password("correct-horse-staple")}, store, clock)
    assert await with_a_user.session(with_cookie(cookie)) is None


def test_user_add_refuses_the_login_links_name(tmp_path: Path) -> None:
    refused = run_cli("user", "add", LINK_USER, "--password-stdin", cwd=tmp_path, stdin="correct-horse-staple\n")
    assert refused.returncode == 2
    assert "user name" in refused.stderr
