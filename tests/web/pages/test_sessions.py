"""Sessions and login links over HTTP: a link works once, while it is valid and only while no user exists (on
any instance sharing the journal: test_shared_sessions.py); its session ends once users do; logging out ends a
session even for a copy of its cookie; tokens that are not ASCII are refused (never a 500) wherever a signed
token is read."""

from __future__ import annotations

from pathlib import Path

from broadcaster.store import Store
from broadcaster.web.auth.gate import SESSION_COOKIE, Gate
from config import load_settings
from config.keys import stored_secret
from tests.web.pages.conftest import USER, Commander, OpenCommander, hidden_field

NOT_ASCII = "a.1.é"


def restarted_gate(workdir: Path, store: Store) -> Gate:
    """Another gate over the same configuration, signing key and journal: the service before a restart."""
    settings = load_settings(workdir / "broadcaster.toml")
    return Gate(settings, stored_secret(settings.service.data_dir, "session"), store)


def with_session(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={cookie}"}


async def test_a_login_link_signs_in_once(open_commander: OpenCommander) -> None:
    async with open_commander(users=False) as commander:
        token = commander.gate.login_link_token()
        first = await commander.client.get("/login/link", params={"token": token}, allow_redirects=False)
        assert (first.status, first.headers["Location"]) == (303, "/")
        assert SESSION_COOKIE in first.cookies
        page = await commander.client.get("/")
        assert page.status == 200  # signed in
        assert "Signed in as <strong>(login link)</strong>" in await page.text()
        commander.client.session.cookie_jar.clear()
        again = await commander.client.get("/login/link", params={"token": token}, allow_redirects=False)
        assert again.status == 403
        assert "This login link has expired or was already used" in await again.text()
        assert SESSION_COOKIE not in again.cookies


async def test_a_login_link_printed_before_a_restart_works_once_and_a_forged_one_never(
    open_commander: OpenCommander, workdir: Path
) -> None:
    async with open_commander(users=False) as commander:
        for token in ("not-a-token", "", "bm9uY2U.9999999999.forged"):
            refused = await commander.client.get("/login/link", params={"token": token}, allow_redirects=False)
            assert refused.status == 403
            assert SESSION_COOKIE not in refused.cookies
        assert (await commander.client.get("/", allow_redirects=False)).status == 303
        # Signed with the same key (kept in data_dir), as a link printed before a restart would be.
        token = restarted_gate(workdir, commander.runtime.store).login_link_token()
        opened = await commander.client.get("/login/link", params={"token": token}, allow_redirects=False)
        assert (opened.status, opened.headers["Location"]) == (303, "/")
        again = await commander.client.get("/login/link", params={"token": token}, allow_redirects=False)
        assert again.status == 403


async def test_a_login_link_is_refused_once_users_are_configured(commander: Commander) -> None:
    token = commander.gate.login_link_token()
    refused = await commander.client.get("/login/link", params={"token": token}, allow_redirects=False)
    assert refused.status == 403
    assert SESSION_COOKIE not in refused.cookies


async def test_a_login_links_session_ends_once_users_exist(open_commander: OpenCommander) -> None:
    async with open_commander(users=False) as fresh:
        token = fresh.gate.login_link_token()
        redeemed = await fresh.client.get("/login/link", params={"token": token}, allow_redirects=False)
        cookie = redeemed.cookies[SESSION_COOKIE].value
        assert (await fresh.client.get("/", allow_redirects=False)).status == 200
    async with open_commander() as with_users:  # the same data_dir, so the same signing key; now a user
        answer = await with_users.client.get("/", headers=with_session(cookie), allow_redirects=False)
        assert (answer.status, answer.headers["Location"]) == (303, "/login?next=/")


async def test_logging_out_ends_the_session_even_for_a_copy_of_its_cookie(commander: Commander) -> None:
    signed_in = await commander.log_in()
    copied = signed_in.cookies[SESSION_COOKIE].value
    csrf = (await commander.form_tokens())["csrf"]
    assert (await commander.client.post("/logout", data={"csrf": csrf}, allow_redirects=False)).status == 303
    replayed = await commander.client.get("/", headers=with_session(copied), allow_redirects=False)
    assert (replayed.status, replayed.headers["Location"]) == (303, "/login?next=/")
    # Another sign-in is a new session, untouched by the first one's end.
    assert (await commander.log_in()).status == 303
    assert (await commander.client.get("/", allow_redirects=False)).status == 200


async def test_tokens_that_are_not_ascii_are_refused_not_a_server_error(commander: Commander) -> None:
    link = await commander.client.get("/login/link", params={"token": NOT_ASCII}, allow_redirects=False)
    assert link.status == 403
    form = await commander.client.get("/", headers=with_session(NOT_ASCII), allow_redirects=False)
    assert (form.status, form.headers["Location"]) == (303, "/login?next=/")
    login_form = await commander.client.get("/login")
    fields = {"user": USER, "password": "x", "next": "/", "login_token": NOT_ASCII}
    assert hidden_field(await login_form.text(), "login_token")
    assert (await commander.client.post("/login", data=fields, allow_redirects=False)).status == 403
    await commander.log_in()
    for path in ("/", "/logout"):
        posted = await commander.client.post(path, data={"csrf": NOT_ASCII}, allow_redirects=False)
        assert posted.status == 403, path
    api = await commander.client.get("/api/v1/incidents", headers={"Authorization": "Bearer é"})
    assert api.status == 401
