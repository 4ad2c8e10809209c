"""`broadcaster drill`: a marked test update reaches the drill targets and nothing real, a drill target equal
to a real one is refused before anything is sent, and drills stay off the real status site.

Every channel has a real target and a drill target on the same real peer (tests.support.drill): one
aiosmtpd server, one webhook receiver, the fake X API (which accepts only the drill account), and the mirror's
directories. The CLI runs as a user runs it, in a child process."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from broadcaster.domain.subscriptions import Subscriber
from broadcaster.store.sqlite import SqliteStore
from config import load_settings
from config.drill import normal_url, overlapping, same_x_account
from config.secrets import MASK
from config.x import XSettings
from tests.channels.email.smtp_server import closed_port
from tests.channels.webhook.receiver import Answer
from tests.channels.x.oauth1 import Credentials
from tests.support.drill import (
    DRILL_ADDRESS,
    DRILL_X,
    REAL_X,
    SECRET,
    SUBSCRIBER,
    Peers,
    cli,
    drill_config,
    drill_peers,
)
from tests.support.helpers import cli_env, eventually

CHANNEL_KEYS = {"channel", "targets", "delivered", "failed", "pending", "first_delivered_s", "last_delivered_s"}


@pytest.fixture
async def peers(workdir: Path) -> AsyncIterator[Peers]:
    async with drill_peers(workdir) as running:
        yield running


async def drill_incidents(workdir: Path) -> list[str]:
    """The incidents of the drill journal, as `broadcaster status` reads them when pointed at it."""
    ledger = await cli("status", "--json", cwd=workdir, env={"BROADCASTER_STORE__URL": "sqlite:///var/drills.db"})
    assert ledger.returncode == 0, ledger.stderr
    return [incident["name"] for incident in json.loads(ledger.stdout)["incidents"]]


def assert_nothing_sent(workdir: Path, peers: Peers) -> None:
    assert peers.smtp.received == []
    assert peers.receiver.received == []
    assert list(peers.x.posts) == [] and peers.x.auth_failures == []
    assert not (workdir / "drill-site").exists() and not (workdir / "public").exists()
    assert not (workdir / "var" / "drills.db").exists()


async def test_a_drill_reaches_every_drill_target_and_no_real_one(workdir: Path, peers: Peers) -> None:
    drill_config(workdir, peers)
    result = await cli("drill", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr

    # Email: the drill address, through the configured relay; the subscriber on the same server, nothing.
    assert peers.mailed() == {DRILL_ADDRESS}
    (message,) = (received.message for received in peers.smtp.received)
    assert "[DRILL] Broadcaster drill" in str(message["Subject"])
    # Webhook: signed, marked as a drill in meta and in the title; the real receiver path, nothing.
    assert {request.path for request in peers.receiver.received} == {"/drill"}
    (request,) = peers.receiver.at("/drill")
    body = Webhook(SECRET).verify(request.body, request.headers)
    assert body["meta"]["drill"] is True
    assert body["incident"]["name"] == "[DRILL] Broadcaster drill"
    # Mirror: the drill's own directory; the real one is not even created.
    summary = json.loads((workdir / "drill-site" / "api/v2/summary.json").read_text())
    assert [incident["name"] for incident in summary["incidents"]] == ["[DRILL] Broadcaster drill"]
    assert not (workdir / "public").exists()
    # X: one post, made as the drill account (a request made as the real account would fail authentication).
    (post,) = peers.x.posts
    assert "[DRILL] Broadcaster drill" in post.text
    assert peers.x.auth_failures == []
    # ...and journaled as a drill, in the drill journal only.
    assert await drill_incidents(workdir) == ["[DRILL] Broadcaster drill"]
    assert not (workdir / "var" / "broadcaster.db").exists()
    assert {channel["channel"] for channel in json.loads(result.stdout)["channels"]} == {
        "email",
        "x",
        "webhook",
        "mirror",
    }


async def test_the_json_report_times_each_channel(workdir: Path, peers: Peers) -> None:
    drill_config(
        workdir, peers, extra=f'[[drill.webhook_targets]]\nname = "second"\nurl = "{peers.receiver.url("/second")}"\n'
    )
    result = await cli("drill", "--json", "--channel", "webhook", "--channel", "mirror", cwd=workdir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"drill", "update_id", "incident_id", "channels", "skipped", "deliveries"}
    assert report["drill"] is True
    by_channel = {channel["channel"]: channel for channel in report["channels"]}
    assert list(by_channel) == ["webhook", "mirror"]
    for channel in report["channels"]:
        assert set(channel) == CHANNEL_KEYS
        assert 0 <= channel["first_delivered_s"] <= channel["last_delivered_s"]
        assert (channel["failed"], channel["pending"]) == (0, 0)
    assert (by_channel["webhook"]["targets"], by_channel["webhook"]["delivered"]) == (2, 2)
    assert (by_channel["mirror"]["targets"], by_channel["mirror"]["delivered"]) == (1, 1)
    assert {(d["channel"], d["target"], d["state"]) for d in report["deliveries"]} == {
        ("webhook", "drill", "delivered"),
        ("webhook", "second", "delivered"),
        ("mirror", "drill-site", "delivered"),
    }
    # The report's last figure is the channel's last delivery, counted from when the drill was accepted.
    finished = max(d["finished_at"] for d in report["deliveries"] if d["channel"] == "webhook")
    first = min(d["finished_at"] for d in report["deliveries"] if d["channel"] == "webhook")
    assert by_channel["webhook"]["last_delivered_s"] - by_channel["webhook"]["first_delivered_s"] == pytest.approx(
        finished - first, abs=0.002
    )
    assert peers.smtp.received == [] and list(peers.x.posts) == []  # --channel left them out

    table = await cli("drill", "--channel", "mirror", "--message", "Second drill.", cwd=workdir)
    assert table.returncode == 0, table.stderr
    assert "channel  targets  delivered  failed  pending  first" in table.stdout


REFUSALS = {
    "an address differing only in case": (
        {"drill": {"email_recipients": [SUBSCRIBER.upper()]}},
        ["[drill] email_recipients[0]", "[email] subscribers_file"],
    ),
    "a URL differing in escapes and a trailing slash": (
        {"drill_webhook": "http://127.0.0.1:{port}/%72%65al/"},
        ["[drill] webhook_targets[0] (drill)", "[webhook] targets[0] (real)"],
    ),
    "a directory inside the real mirror's": (
        {"drill": {"mirror_directory": "public/../public/drills"}},
        ["[drill] mirror_directory", "[mirror] directories[0] 'public'"],
    ),
    "a directory inside the data directory, where publish targets stage the real site": (
        {"drill": {"mirror_directory": "var/publish/pages/site"}},
        ["[drill] mirror_directory", "[service] data_dir"],
    ),
    "the real X account's access token": (
        {"drill_x": Credentials("ck-other-0b1c2d", "cs-other-9e8f7a6b", REAL_X.token, "ats-other-5d4c3b2a")},
        ["[drill.x]", "same X account as [x]"],
    ),
}


@pytest.mark.parametrize(("overrides", "named"), REFUSALS.values(), ids=REFUSALS.keys())
async def test_a_drill_target_equal_to_a_real_one_is_refused(
    workdir: Path, peers: Peers, overrides: dict[str, Any], named: list[str]
) -> None:
    if "drill_webhook" in overrides:
        overrides = {"drill_webhook": overrides["drill_webhook"].format(port=peers.receiver.port)}
    drill_config(workdir, peers, **overrides)
    result = await cli("drill", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "the drill would reach real targets, so it was not run" in result.stderr
    for key in named:
        assert key in result.stderr
    for secret in (SECRET, REAL_X.token, REAL_X.consumer_key, "/real", "%72%65al"):
        assert secret not in result.stderr
    assert_nothing_sent(workdir, peers)


async def test_drills_stay_off_the_status_site(workdir: Path, peers: Peers) -> None:
    drill_config(workdir, peers)
    real = await cli(
        *("send", "--title", "API errors", "--status", "identified", "--message", "A fix is out."),
        *(
            "--channel",
            "email",
            "--channel",
            "webhook",
            "--channel",
            "mirror",
        ),  # the fake X knows the drill account only
        cwd=workdir,
    )
    assert real.returncode == 0, real.stderr
    drilled = await cli("drill", "--json", cwd=workdir)
    assert drilled.returncode == 0, drilled.stderr

    overview = json.loads((await cli("status", "--json", cwd=workdir)).stdout)
    assert [incident["name"] for incident in overview["incidents"]] == ["API errors"]
    drill_incident = json.loads(drilled.stdout)["incident_id"]
    assert (await cli("status", drill_incident, cwd=workdir)).returncode == 2  # unknown to the real journal
    rendered = await cli("render", cwd=workdir)
    assert rendered.returncode == 0, rendered.stderr
    site = workdir / "public"
    pages = [path for path in site.rglob("*") if path.is_file()]
    assert any(path.name == "history.atom" for path in pages) and any(path.name == "uptime.json" for path in pages)
    for path in pages:
        assert "DRILL" not in path.read_text(), path
    assert json.loads((site / "api/v2/incidents.json").read_text())["incidents"][0]["name"] == "API errors"
    # The real update went out as ever: to the subscriber, and to the real receiver without a drill mark.
    assert peers.mailed() == {SUBSCRIBER.lower(), DRILL_ADDRESS}
    (real_request,) = peers.receiver.at("/real")
    assert set(json.loads(real_request.body)["meta"]) == {"event", "update_id", "sent_at"}


async def test_a_drill_runs_while_the_real_journal_on_redis_is_down(workdir: Path, peers: Peers) -> None:
    drill_config(workdir, peers, extra=f'[store]\nurl = "redis://127.0.0.1:{closed_port()}/0"\n')
    result = await cli("drill", "--channel", "mirror", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert await drill_incidents(workdir) == ["[DRILL] Broadcaster drill"]


async def test_a_drill_recipient_who_subscribed_in_the_journal_is_refused(workdir: Path, peers: Peers) -> None:
    drill_config(workdir, peers)
    added = await cli("subscribers", "add", DRILL_ADDRESS.upper(), cwd=workdir)  # as an operator adds one
    assert added.returncode == 0, added.stderr
    result = await cli("drill", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "the drill would reach real targets, so it was not run" in result.stderr
    assert "[drill] email_recipients[0] 'drill@example.net' is an email subscriber in the journal" in result.stderr
    assert DRILL_ADDRESS not in peers.mailed()
    assert_nothing_sent(workdir, peers)


async def test_a_drill_webhook_that_subscribed_in_the_journal_is_refused(workdir: Path, peers: Peers) -> None:
    drill_config(workdir, peers)
    journal = workdir / "var" / "broadcaster.db"
    store = SqliteStore(journal, url=f"sqlite:///{journal}")
    await store.open()
    try:  # what the form's webhook registration journals once its owner confirmed it
        hook = Subscriber(kind="webhook", address=peers.receiver.url("/drill/"), secret=SECRET)
        await store.save_subscribers([hook])
    finally:
        await store.close()
    result = await cli("drill", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "[drill] webhook_targets[0] (drill) has the URL of a webhook subscriber in the journal" in result.stderr
    assert peers.receiver.at("/drill") == []
    assert_nothing_sent(workdir, peers)


async def test_unreadable_journal_subscribers_withhold_email_and_webhook(workdir: Path, peers: Peers) -> None:
    drill_config(workdir, peers, extra=f'[store]\nurl = "redis://127.0.0.1:{closed_port()}/0"\n')
    named = await cli("drill", "--channel", "webhook", cwd=workdir)
    assert named.returncode == 2
    assert "cannot read the journal's subscribers" in named.stderr and "the drill was not run" in named.stderr

    result = await cli("drill", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [channel["channel"] for channel in report["channels"]] == ["x", "mirror"]
    assert [(s["channel"], "cannot read the journal's subscribers" in s["reason"]) for s in report["skipped"]] == [
        ("email", True),
        ("webhook", True),
    ]
    assert "email left out: cannot read the journal's subscribers" in result.stderr
    assert peers.smtp.received == [] and peers.receiver.received == []


async def test_the_report_shows_a_channel_without_drill_targets_as_skipped(workdir: Path, peers: Peers) -> None:
    drill_config(workdir, peers, drill_x=None)
    result = await cli("drill", "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["skipped"] == [{"channel": "x", "reason": "[drill.x] is not set"}]
    table = await cli("drill", "--channel", "mirror", "--message", "Only the mirror.", cwd=workdir)
    assert "x skipped" not in table.stdout  # left out by --channel: not the drill's gap
    whole = await cli("drill", "--message", "Every channel.", cwd=workdir)
    assert whole.returncode == 0, whole.stderr
    assert "x skipped: [drill.x] is not set" in whole.stdout


async def test_drill_email_links_nowhere_near_the_real_service(workdir: Path, peers: Peers) -> None:
    unsubscribe = "https://status.example.com/unsubscribe"
    drill_config(
        workdir,
        peers,
        email={"unsubscribe_url": unsubscribe},
        mirror={"public_url": "https://status.example.com"},
        extra='[service]\npublic_url = "https://broadcaster.example.com"\n',
    )
    result = await cli("drill", "--channel", "email", cwd=workdir)
    assert result.returncode == 0, result.stderr
    (received,) = peers.smtp.received
    text = received.message.as_string() + "".join(
        part.get_content() for part in received.message.walk() if part.get_content_maintype() == "text"
    )
    assert "example.com/" not in text  # no unsubscribe, manage or incident page link: drills are on no site
    assert "List-Unsubscribe" not in text
    assert [path.name for path in (workdir / "var").glob("*.key")] == []


async def test_ctrl_c_during_a_drill_exits_3(workdir: Path, peers: Peers) -> None:
    peers.receiver.script("/drill", Answer(delay=30))

    async def answering() -> bool:
        return "/drill" in peers.receiver.answering

    drill_config(workdir, peers)
    command = (sys.executable, "-m", "broadcaster", "drill", "--channel", "webhook")
    pipe = asyncio.subprocess.PIPE
    process = await asyncio.create_subprocess_exec(*command, cwd=workdir, env=cli_env(), stdout=pipe, stderr=pipe)
    try:
        await eventually(answering, within=30)
        process.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 3, err.decode()
    assert "DRILL" in err.decode()  # it was the drill that ran, and ended so


async def test_drill_secrets_are_masked_by_config_and_known_to_the_scrubber(workdir: Path, peers: Peers) -> None:
    drill_config(workdir, peers, drill_webhook="http://127.0.0.1:9/hooks/T0K3N-drill-77c1?key=QU3RY-drill-41")
    result = await cli("config", cwd=workdir)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)["drill"]
    assert shown["webhook_targets"][0]["url"] == "http://127.0.0.1:9/…"
    assert shown["webhook_targets"][0]["secret"] == shown["x"]["access_token"] == "**********"
    for secret in (DRILL_X.consumer_secret, DRILL_X.token, DRILL_X.token_secret, SECRET, "T0K3N-drill-77c1"):
        assert secret not in result.stdout
    secrets = load_settings(workdir / "broadcaster.toml").secret_values()
    assert {DRILL_X.consumer_key, DRILL_X.token_secret, SECRET, "T0K3N-drill-77c1", "QU3RY-drill-41"} <= set(secrets)
    assert MASK not in secrets


# --- what counts as the same target


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTPS://Hooks.Example.com/status", "https://hooks.example.com:443/status/"),
        ("http://h.example", "http://h.example:80/"),
        ("https://h.example/a%2fb/%7Euser?x=%41", "https://h.example/a%2Fb/~user?x=A"),
        ("https://user:pw@h.example/p#frag", "https://h.example/p"),
    ],
)
def test_urls_naming_one_endpoint_normalise_alike(a: str, b: str) -> None:
    assert normal_url(a) == normal_url(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://h.example/status", "http://h.example/status"),
        ("https://h.example/status", "https://h.example:8443/status"),
        ("https://h.example/a%2Fb", "https://h.example/a/b"),  # an escaped slash is part of one segment
        ("https://h.example/p?x=1", "https://h.example/p?x=2"),
    ],
)
def test_urls_naming_other_endpoints_stay_apart(a: str, b: str) -> None:
    assert normal_url(a) != normal_url(b)


def test_directories_overlap_through_links_and_nesting(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "site")
    assert overlapping(tmp_path / "link", tmp_path / "site")
    assert overlapping(tmp_path / "site" / "drill", tmp_path / "link")
    assert overlapping(tmp_path, tmp_path / "site")
    assert not overlapping(tmp_path / "site", tmp_path / "site-drill")


def x(token: str, consumer_key: str = "ck-1") -> XSettings:
    return XSettings(consumer_key=consumer_key, access_token=token)


def test_x_credentials_of_one_account_are_the_same_account() -> None:
    assert same_x_account(x("1650-aaaa"), x("1650-aaaa", consumer_key="ck-2"))
    assert same_x_account(x("1650-aaaa"), x("1650-bbbb"))  # a second token of the same user id
    assert not same_x_account(x("1650-aaaa"), x("2750-aaaa"))
    assert not same_x_account(x("1650-aaaa"), XSettings())
