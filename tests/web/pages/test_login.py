"""Signing in and out over HTTP: wrong passwords refused and then rate-limited (per user and client, per
client, per user under attack), clients behind trusted proxies, login CSRF refused, `next` kept on this
site, the session cookie's flags, logging out only with the CSRF token, IPv6 clients counted by /64 and the
cap on one user's failures that spares browsers that signed in before."""

from __future__ import annotations

import asyncio

import pytest

from broadcaster.web.auth import limits
from broadcaster.web.auth.gate import DEVICE_COOKIE, SESSION_COOKIE
from broadcaster.web.auth.limits import (
    LOGIN_FAILURES_PER_CLIENT,
    LOGIN_FAILURES_PER_USER,
    LOGIN_FAILURES_PER_USER_AND_CLIENT,
)
from broadcaster.web.pages.login import login_instructions
from tests.web.pages.conftest import USER, Commander, OpenCommander, hidden_field

WRONG = "not-the-password"
BEHIND_A_PROXY = '[service]\ntrusted_proxies = ["127.0.0.1/32"]\n'


async def test_a_wrong_password_is_refused_then_rate_limited(commander: Commander) -> None:
    for _ in range(LOGIN_FAILURES_PER_USER_AND_CLIENT):
        refused = await commander.log_in(password=WRONG)
        assert refused.status == 403
        assert "Wrong user name or password." in await refused.text()
        assert SESSION_COOKIE not in refused.cookies
    limited = await commander.log_in()  # even the right password now waits
    assert limited.status == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins. Try again in 15 minutes." in await limited.text()
    assert SESSION_COOKIE not in limited.cookies
    assert (await commander.client.get("/", allow_redirects=False)).status == 303


async def test_attempts_at_the_same_time_cannot_all_slip_under_the_limit(commander: Commander) -> None:
    """Each failure is counted before its password check (which waits on a thread), so attempts sent together
    see each other's: no more than the limit is ever checked."""
    form = await commander.client.get("/login")
    token = hidden_field(await form.text(), "login_token")
    fields = {"user": USER, "password": WRONG, "next": "/", "login_token": token}
    answers = await asyncio.gather(
        *(commander.client.post("/login", data=fields) for _ in range(3 * LOGIN_FAILURES_PER_USER_AND_CLIENT))
    )
    statuses = sorted(answer.status for answer in answers)
    assert statuses.count(403) == LOGIN_FAILURES_PER_USER_AND_CLIENT
    assert set(statuses) == {403, 429}


async def test_one_client_trying_many_users_is_limited(commander: Commander) -> None:
    for n in range(LOGIN_FAILURES_PER_CLIENT):
        assert (await commander.log_in(user=f"guess-{n}", password=WRONG)).status == 403
    limited = await commander.log_in()  # a user this client never tried, with the right password
    assert limited.status == 429
    assert SESSION_COOKIE not in limited.cookies


async def test_behind_a_trusted_proxy_each_forwarded_client_is_counted_apart(open_commander: OpenCommander) -> None:
    async with open_commander(BEHIND_A_PROXY) as commander:
        for _ in range(LOGIN_FAILURES_PER_USER_AND_CLIENT):
            assert (await commander.log_in(password=WRONG, forwarded_for="203.0.113.1")).status == 403
        assert (await commander.log_in(forwarded_for="203.0.113.1")).status == 429
        # The commander elsewhere is not locked out by someone else's failures.
        signed_in = await commander.log_in(forwarded_for="198.51.100.2")
        assert signed_in.status == 303
        assert SESSION_COOKIE in signed_in.cookies


async def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(commander: Commander) -> None:
    for n in range(LOGIN_FAILURES_PER_USER_AND_CLIENT):
        assert (await commander.log_in(password=WRONG, forwarded_for=f"203.0.113.{n}")).status == 403
    # Every attempt came from 127.0.0.1, whatever the header said.
    assert (await commander.log_in(forwarded_for="198.51.100.2")).status == 429


async def test_a_user_guessed_from_many_addresses_stays_open_to_clients_that_have_not_failed(
    open_commander: OpenCommander,
) -> None:
    async with open_commander(BEHIND_A_PROXY) as commander:
        for n in range(LOGIN_FAILURES_PER_USER):  # one guess from each address: no per-client limit is reached
            assert (await commander.log_in(password=WRONG, forwarded_for=f"203.0.113.{n}")).status == 403
        # Under attack: an address that has failed for this user is refused, even with the right password...
        assert (await commander.log_in(forwarded_for="203.0.113.0")).status == 429
        # ...while one that has not (the commander's own browser) still signs in.
        assert (await commander.log_in(forwarded_for="198.51.100.2")).status == 303


async def test_a_guesser_rotating_ipv6_addresses_in_one_64_is_one_client(open_commander: OpenCommander) -> None:
    async with open_commander(BEHIND_A_PROXY) as commander:
        for n in range(LOGIN_FAILURES_PER_USER_AND_CLIENT):
            assert (await commander.log_in(password=WRONG, forwarded_for=f"2001:db8:1:2::{n + 1:x}")).status == 403
        assert (await commander.log_in(forwarded_for="2001:db8:1:2:ffff::1")).status == 429
        assert (await commander.log_in(forwarded_for="2001:db8:1:3::1")).status == 303  # another /64


async def test_past_the_cap_on_a_users_failures_only_a_browser_that_signed_in_before_may_try(
    open_commander: OpenCommander, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cap made small (it is read when the gate is built), so the test runs a dozen password checks, not 100.
    monkeypatch.setattr(limits, "LOGIN_FAILURES_PER_USER_CAP", 12)
    async with open_commander(BEHIND_A_PROXY) as commander:
        signed_in = await commander.log_in(forwarded_for="198.51.100.2")
        device = signed_in.cookies[DEVICE_COOKIE]
        assert device["httponly"] and device["samesite"] == "Strict" and device["path"] == "/login"
        commander.client.session.cookie_jar.clear()  # the guessers have no device cookie
        for n in range(12):  # one guess per address: no per-client limit is reached
            assert (await commander.log_in(password=WRONG, forwarded_for=f"203.0.113.{n}")).status == 403
        new_browser = await commander.log_in(forwarded_for="198.51.100.3")
        assert new_browser.status == 429
        assert "Too many failed sign-ins" in await new_browser.text()
        commander.client.session.cookie_jar.update_cookies(
            {DEVICE_COOKIE: device.value}, commander.client.make_url("/login")
        )
        assert (await commander.log_in(forwarded_for="198.51.100.3")).status == 303


async def test_the_right_password_signs_in_and_returns_to_the_page_asked_for(commander: Commander) -> None:
    form = await commander.client.get("/", allow_redirects=False)
    assert (form.status, form.headers["Location"]) == (303, "/login?next=/")
    signed_in = await commander.log_in(next_page="/updates/0123456789ab?x=1")
    assert (signed_in.status, signed_in.headers["Location"]) == (303, "/updates/0123456789ab?x=1")
    cookie = signed_in.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    page = await commander.client.get("/")
    assert page.status == 200
    assert f"Signed in as <strong>{USER}</strong>" in await page.text()


@pytest.mark.parametrize(("public_url", "secure"), [("https://commander.example", True), ("http://10.0.0.5", False)])
async def test_the_session_cookie_is_secure_when_the_service_answers_over_https(
    open_commander: OpenCommander, public_url: str, secure: bool
) -> None:
    config = f'[service]\npublic_url = "{public_url}"\n[mirror]\npublic_url = "https://status.example"\n'
    async with open_commander(config) as commander:
        form = await commander.client.get("/login")
        token = hidden_field(await form.text(), "login_token")
        login_cookie = next(iter(form.cookies.values()))
        assert bool(login_cookie["secure"]) is secure
        # Sent by hand: a cookie jar keeps a Secure cookie from this plain-HTTP test server to itself.
        fields = {"user": USER, "password": "correct-horse-staple", "next": "/", "login_token": token}
        headers = {"Cookie": f"{login_cookie.key}={login_cookie.value}"}
        signed_in = await commander.client.post("/login", data=fields, headers=headers, allow_redirects=False)
        assert signed_in.status == 303
        assert bool(signed_in.cookies[SESSION_COOKIE]["secure"]) is secure


async def test_a_login_posted_without_the_login_forms_cookie_is_refused(commander: Commander) -> None:
    """Login CSRF: another site can post the form, but not with this browser's SameSite=Strict cookie."""
    form = await commander.client.get("/login")
    token = hidden_field(await form.text(), "login_token")
    commander.client.session.cookie_jar.clear()
    fields = {"user": USER, "password": "correct-horse-staple", "next": "/", "login_token": token}
    refused = await commander.client.post("/login", data=fields, allow_redirects=False)
    assert refused.status == 403
    assert "not opened on this site" in await refused.text()
    assert SESSION_COOKIE not in refused.cookies
    forged = await commander.client.post("/login", data={**fields, "login_token": "forged"}, allow_redirects=False)
    assert forged.status == 403


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/ /evil.example",
        "",
    ],
)
async def test_next_never_leads_to_another_site(commander: Commander, target: str) -> None:
    signed_in = await commander.log_in(next_page=target)
    assert (signed_in.status, signed_in.headers["Location"]) == (303, "/")


async def test_logging_out_needs_the_csrf_token(commander: Commander) -> None:
    await commander.log_in()
    tokens = await commander.form_tokens()
    refused = await commander.client.post("/logout", data={"csrf": "wrong"}, allow_redirects=False)
    assert refused.status == 403
    assert (await commander.client.get("/", allow_redirects=False)).status == 200  # still signed in
    out = await commander.client.post("/logout", data={"csrf": tokens["csrf"]}, allow_redirects=False)
    assert (out.status, out.headers["Location"]) == (303, "/login")
    assert (await commander.client.get("/", allow_redirects=False)).status == 303


async def test_serve_offers_a_link_only_on_a_terminal_bound_to_loopback(open_commander: OpenCommander) -> None:
    async with open_commander(users=False) as fresh:
        for host in ("127.0.0.1", "::1"):
            lines = login_instructions(fresh.gate, (host, 8080), on_terminal=True)
            link = next(line.strip() for line in lines if "/login/link?token=" in line)
            shown = f"[{host}]" if ":" in host else host
            assert link.startswith(f"http://{shown}:8080/login/link?token=")
        for host, on_terminal in (("0.0.0.0", True), ("192.0.2.10", True), ("127.0.0.1", False)):
            lines = login_instructions(fresh.gate, (host, 8080), on_terminal=on_terminal)
            assert not any("token=" in line for line in lines)
            assert any("broadcaster user add NAME" in line for line in lines)
    async with open_commander() as with_users:
        assert login_instructions(with_users.gate, ("127.0.0.1", 8080), on_terminal=True) == []
