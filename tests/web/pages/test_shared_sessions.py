"""Sessions and login links across instances: two services, each with its own data directory and Store object,
share one journal (a SQLite file, or a redis-server) and the signing key ([auth] session_secret), as two
`serve` instances behind one load balancer do. A logout on one ends the session on the other; a login link
works once, on whichever instance opens it. When the journal cannot be reached, a session is judged by its
signature (logged), a logout still clears the cookie (logged), and a login link is refused with a 503."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from broadcaster.domain.errors import StoreError
from broadcaster.store.redis import RedisStore
from broadcaster.web.auth.gate import LINK_USER, SESSION_COOKIE, Gate
from broadcaster.web.keys import GATE
from broadcaster.web.pages import login
from config import load_settings
from tests.conftest import WriteConfig
from tests.support.redis import RedisServer
from tests.web.pages.conftest import Commander, OpenCommander
from tests.web.pages.test_sessions import with_session

SECRET = "shared-session-secret-3f9a1c7e5b"
Instances = Callable[..., AbstractAsyncContextManager[tuple[Commander, Commander]]]


@pytest.fixture(params=["sqlite", "redis"])
def journal_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    return "sqlite:///shared/broadcaster.db"


@pytest.fixture
def instances(open_commander: OpenCommander, journal_url: str) -> Instances:
    """Opens two services on one journal and one signing key, each with a data directory of its own."""

    def config(name: str) -> str:
        service = f'[service]\ndata_dir = "var-{name}"\n'
        return service + f'[store]\nurl = "{journal_url}"\n[auth]\nsession_secret = "{SECRET}"\n'

    @asynccontextmanager
    async def serving(*, users: bool = True) -> AsyncIterator[tuple[Commander, Commander]]:
        async with (
            open_commander(config("one"), users=users) as one,
            open_commander(config("two"), users=users) as two,
        ):
            yield one, two

    return serving


async def test_a_logout_on_one_instance_ends_the_session_on_the_other(instances: Instances) -> None:
    async with instances() as (one, two):
        cookie = (await one.log_in()).cookies[SESSION_COOKIE].value
        assert (await two.client.get("/", headers=with_session(cookie), allow_redirects=False)).status == 200
        csrf = (await one.form_tokens())["csrf"]
        assert (await one.client.post("/logout", data={"csrf": csrf}, allow_redirects=False)).status == 303
        replayed = await two.client.get("/", headers=with_session(cookie), allow_redirects=False)
        assert (replayed.status, replayed.headers["Location"]) == (303, "/login?next=/")


async def test_a_login_link_works_once_on_whichever_instance_opens_it(instances: Instances) -> None:
    async with instances(users=False) as (one, two):
        token = one.gate.login_link_token()
        opened = await two.client.get("/login/link", params={"token": token}, allow_redirects=False)
        assert (opened.status, opened.headers["Location"]) == (303, "/")
        for instance in (one, two):
            again = await instance.client.get("/login/link", params={"token": token}, allow_redirects=False)
            assert again.status == 403
            assert SESSION_COOKIE not in again.cookies


@pytest.fixture
async def unreachable_journal() -> AsyncIterator[RedisStore]:
    """A Redis journal whose server stopped after it was opened: every read and write fails."""
    server = RedisServer().start()
    journal = RedisStore(server.url)
    try:
        await journal.open()
        server.stop()
        yield journal
    finally:
        await journal.close()
        server.close()


@pytest.fixture
def gate(write_config: WriteConfig, unreachable_journal: RedisStore) -> Gate:
    """A gate with no user yet (a login link's session is valid) over the unreachable journal."""
    return Gate(load_settings(write_config("")), SECRET.encode(), unreachable_journal)


def link_session(gate: Gate) -> web.Request:
    response = web.Response()
    gate.start_session(response, LINK_USER, make_mocked_request("GET", "/"))
    return make_mocked_request("GET", "/", headers=with_session(response.cookies[SESSION_COOKIE].value))


async def test_a_journal_that_cannot_be_read_leaves_sessions_to_their_signature(
    gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    request = link_session(gate)
    with caplog.at_level(logging.WARNING, logger="broadcaster.web"):
        assert await gate.session(request) is not None
        assert await gate.session(request) is not None
    told = [record.getMessage() for record in caplog.records if "signature alone" in record.getMessage()]
    assert len(told) == 1, "said once when it starts, not at every request"
    assert await gate.session(make_mocked_request("GET", "/", headers=with_session("forged.1.x"))) is None


async def test_a_logout_the_journal_cannot_record_still_clears_the_cookie(
    gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    session = await gate.session(link_session(gate))
    assert session is not None
    response = web.Response()
    with caplog.at_level(logging.ERROR, logger="broadcaster.web"):
        await gate.end_session(response, session)
    assert response.cookies[SESSION_COOKIE]["max-age"] == "0"
    assert any("could not record it" in record.getMessage() for record in caplog.records)


async def test_a_login_link_the_journal_cannot_check_is_refused_with_a_503(gate: Gate) -> None:
    with pytest.raises(StoreError):
        await gate.redeem_login_link(gate.login_link_token())
    app = web.Application()
    app[GATE] = gate
    app.router.add_get("/login/link", login.login_link)
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/login/link", params={"token": gate.login_link_token()}, allow_redirects=False)
        assert answer.status == 503
        assert "This login link could not be checked" in await answer.text()
        assert SESSION_COOKIE not in answer.cookies
