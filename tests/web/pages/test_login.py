"""Signing in and out over HTTP: wrong passwords refused and then rate-limited, login CSRF refused, single-use
and expiring login links, `next` kept on this site, and logging out only with the CSRF token."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from broadcaster.web.auth.gate import LOGIN_FAILURES_PER_USER, LOGIN_LINK_LIFETIME, SESSION_COOKIE, Gate
from broadcaster.web.pages.login import login_instructions
from config import load_settings
from config.keys import stored_secret
from tests.web.pages.conftest import USER, Commander, OpenCommander, hidden_field


async def test_a_wrong_password_is_refused_then_rate_limited(commander: Commander) -> None:
    for _ in range(LOGIN_FAILURES_PER_USER):
        refused = await commander.log_in(password="not-the-password")
        assert refused.status == 403
        assert "Wrong user name or password." in await refused.text()
        assert SESSION_COOKIE not in refused.cookies
    limited = await commander.log_in()  # even the right password now waits
    assert limited.status == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins. Try again in 15 minutes." in await limited.text()
    assert SESSION_COOKIE not in limited.cookies
    assert (await commander.client.get("/", allow_redirects=False)).status == 303


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


async def test_a_login_link_signs_in_once(commander: Commander) -> None:
    token = commander.gate.login_link_token()
    first = await commander.client.get("/login/link", params={"token": token}, allow_redirects=False)
    assert (first.status, first.headers["Location"]) == (303, "/")
    assert SESSION_COOKIE in first.cookies
    assert (await commander.client.get("/")).status == 200  # signed in
    commander.client.session.cookie_jar.clear()
    again = await commander.client.get("/login/link", params={"token": token}, allow_redirects=False)
    assert again.status == 403
    assert "This login link has expired or was already used" in await again.text()
    assert SESSION_COOKIE not in again.cookies


async def test_an_expired_or_forged_login_link_is_refused(commander: Commander, workdir: Path) -> None:
    settings = load_settings(workdir / "broadcaster.toml")
    key = stored_secret(settings.service.data_dir, "session")
    made_earlier = Gate(settings, key, clock=lambda: time.time() - LOGIN_LINK_LIFETIME - 1)
    for token in (made_earlier.login_link_token(), "not-a-token", ""):
        refused = await commander.client.get("/login/link", params={"token": token}, allow_redirects=False)
        assert refused.status == 403
        assert SESSION_COOKIE not in refused.cookies
    assert (await commander.client.get("/", allow_redirects=False)).status == 303


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
