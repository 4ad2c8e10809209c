"""No secret leaves the broadcaster: not in anything the CLI prints, not in its logs, not in the journal.

A real receiver on loopback answers every webhook with an error whose body echoes the request back (the
URL, percent-encoded and JSON-escaped too, its last path segment alone, and every header, Authorization
included); the real CLI runs in child
processes. Each secret is then looked for, as typed, percent-encoded and base64-encoded, in every stdout
and stderr and in the raw bytes of the journal files."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from aiohttp import web

from broadcaster.cli.secrecy import scrub_output, scrubbed_handler
from config.scrubber import Scrubber
from config.secrets import MASK
from tests.support.helpers import run_cli

USER, PASSWORD = "hookuser", "p4ssW0rd-Zq9x"
PATH_TOKEN, QUERY_TOKEN = "T0K3N-path-7f3a1c", "QU3RY-tok-19c2d8"
OTHER_PATH_TOKEN, OTHER_QUERY_TOKEN = "T0K3N-other-88d4e0", "QU3RY-other-2b7e5a"
BEARER = "B34RER-tok-55e1f9"
SIGNING_SECRET = "whsec_" + base64.b64encode(b"signing-key-6c0ffee-0123456789").decode()
SECRETS = [
    PASSWORD,
    f"{USER}:{PASSWORD}",
    PATH_TOKEN,
    QUERY_TOKEN,
    OTHER_PATH_TOKEN,
    OTHER_QUERY_TOKEN,
    BEARER,
    SIGNING_SECRET,
]


def forms(secret: str) -> set[str]:
    """The secret as typed, percent-encoded and base64-encoded (padded and not, both alphabets)."""
    encoded = {base64.b64encode(secret.encode()).decode(), base64.urlsafe_b64encode(secret.encode()).decode()}
    return (
        {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)} | encoded | {e.rstrip("=") for e in encoded}
    )


@dataclass
class EchoReceiver:
    """Answers every request with an error quoting it back: 410 (gone) under /gone/, 400 elsewhere."""

    port: int = 0
    received: list[tuple[str, str]] = field(default_factory=list)
    """(path, Authorization header) of each request."""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.received.append((request.path, request.headers.get("Authorization", "")))
        url = str(request.url)
        headers = " ".join(f"{name}: {value}" for name, value in request.headers.items())
        escaped = json.dumps({"url": url}).replace("/", "\\/")  # as PHP's json_encode writes it
        last = request.path.rsplit("/", 1)[-1]  # a token echoed on its own
        echo = (
            f"{url} {request.headers.get('Authorization', '')} next={quote(url, safe='')} {escaped} last={last} "
            f"{headers} {body}"
        )
        return web.Response(status=410 if request.path.startswith("/gone/") else 400, text=echo)


@pytest.fixture
async def echo_receiver() -> AsyncIterator[EchoReceiver]:
    receiver = EchoReceiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.port = runner.addresses[0][1]
    yield receiver
    await runner.cleanup()


async def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, off this loop (the receiver answers on it)."""
    return await asyncio.to_thread(run_cli, *args, cwd=cwd, env=env)


def leaks(text: str | bytes) -> list[str]:
    found = [form for secret in SECRETS for form in forms(secret)]
    if isinstance(text, bytes):
        return [form for form in found if form.encode() in text]
    return [form for form in found if form in text]


async def test_no_secret_reaches_output_logs_or_journal(echo_receiver: EchoReceiver, tmp_path: Path) -> None:
    port = echo_receiver.port
    basic_url = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/hooks/{PATH_TOKEN}?token={QUERY_TOKEN}"
    bearer_url = f"http://127.0.0.1:{port}/gone/{OTHER_PATH_TOKEN}?key={OTHER_QUERY_TOKEN}"
    # aiohttp refuses userinfo and an Authorization header on one request: two targets, one of each.
    (tmp_path / "broadcaster.toml").write_text(
        "[mirror]\nenabled = false\n"
        "[retry.webhook]\nmax_attempts = 1\nbreaker_threshold = 100\n"
        "[webhook]\nenabled = true\n"
        f'[[webhook.targets]]\nname = "basic"\nurl = "{basic_url}"\nsecret = "{SIGNING_SECRET}"\nping = true\n'
        f'[[webhook.targets]]\nname = "bearer"\nurl = "{bearer_url}"\n'
        f'headers = {{ Authorization = "Bearer {BEARER}" }}\n'
    )
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    send = ("send", "-v", "--status", "investigating", "--message", "Elevated errors.")
    outputs["send --json"] = first = await cli(*send, "--title", "API errors", "--json", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    incident = json.loads(first.stdout)["incident_id"]
    outputs["send"] = await cli(*send, "--incident", incident, cwd=tmp_path)
    outputs["status"] = await cli("status", "-v", cwd=tmp_path)
    outputs["status ID --json"] = ledger = await cli("status", incident, "--json", "-v", cwd=tmp_path)
    update = json.loads(ledger.stdout)["updates"][0]["update_id"]
    outputs["status UPDATE"] = await cli("status", update, "-v", cwd=tmp_path)
    outputs["retry --failed"] = await cli("retry", "--failed", "-v", cwd=tmp_path)
    outputs["check"] = await cli("check", "-v", cwd=tmp_path)
    outputs["config"] = shown = await cli("config", "-v", cwd=tmp_path)

    # The requests really went out, carrying every secret the receiver then echoed.
    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert (f"/hooks/{PATH_TOKEN}", basic) in echo_receiver.received
    assert (f"/gone/{OTHER_PATH_TOKEN}", f"Bearer {BEARER}") in echo_receiver.received
    assert len([path for path, _ in echo_receiver.received if path.startswith("/hooks/")]) >= 4  # 2 sends, retry, ping
    # ...and the echoes were recorded and shown, masked.
    errors = [d["error"] for u in json.loads(ledger.stdout)["updates"] for d in u["deliveries"] if d["error"]]
    assert {error.split(":")[0] for error in errors} == {"HTTP 400 Bad Request", "HTTP 410 Gone"}
    assert all(MASK in error for error in errors)
    assert f"basic: HTTP 400 Bad Request: http://127.0.0.1:{port}{MASK}?{MASK} Basic {MASK} next={MASK}" in (
        outputs["check"].stdout
    )
    assert "target bearer is gone" in outputs["send --json"].stderr  # a log line quoting the echo
    assert json.loads(shown.stdout)["webhook"]["targets"][0]["url"] == f"http://127.0.0.1:{port}/…"

    for name, result in outputs.items():
        assert leaks(result.stdout) == [], f"{name} stdout"
        assert leaks(result.stderr) == [], f"{name} stderr"
    journal = b"".join(path.read_bytes() for path in sorted((tmp_path / "var").glob("broadcaster.db*")))
    assert b"HTTP 410 Gone" in journal
    assert leaks(journal) == []


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ('[webhook]\nenabled = true\ntargets = ["{url}"]\n', "[webhook] targets[0]"),
        ('[email]\nfallback_relays = ["{url}"]\n', "[email] fallback_relays[0]"),
        ('[[email.fallback_relays]]\nhost = "relay.example"\nport = "{url}"\n', "[email] fallback_relays[0].port"),
    ],
    ids=["webhook targets as a plain list", "fallback relays as a plain list", "a relay port given a URL"],
)
async def test_a_config_error_never_echoes_a_url_with_credentials(tmp_path: Path, config: str, key: str) -> None:
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:9/hooks/{PATH_TOKEN}?token={QUERY_TOKEN}"
    (tmp_path / "broadcaster.toml").write_text(config.format(url=url))
    result = await cli("send", "-v", "--title", "T", "--status", "investigating", "--message", "M", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{key}: " in result.stderr
    assert "(got 'http://127.0.0.1:9/…')" in result.stderr
    assert leaks(result.stdout + result.stderr) == []


async def test_a_url_from_the_environment_is_not_echoed_either(tmp_path: Path) -> None:
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:9/hooks/{PATH_TOKEN}?token={QUERY_TOKEN}"
    result = await cli("config", "-v", cwd=tmp_path, env={"BROADCASTER_WEBHOOK__TARGETS": json.dumps([url])})
    assert result.returncode == 2
    assert "[webhook] targets[0]: " in result.stderr
    assert leaks(result.stdout + result.stderr) == []


def test_log_lines_and_their_tracebacks_are_scrubbed() -> None:
    """The CLI's log handler (the service logs through it too) masks secrets in messages and tracebacks."""
    stream = io.StringIO()
    logger = logging.getLogger("tests.leaks")
    logger.propagate = False
    logger.addHandler(handler := scrubbed_handler(stream))
    scrub_output.use(Scrubber([BEARER]))
    try:
        try:
            raise ValueError(f"the receiver rejected Bearer {BEARER}")
        except ValueError:
            logger.exception("delivery to %s failed", f"https://h.example/?auth={quote(BEARER)}")
    finally:
        scrub_output.use(str)
        logger.removeHandler(handler)
    logged = stream.getvalue()
    assert f"delivery to https://h.example/?auth={MASK} failed" in logged
    assert f"ValueError: the receiver rejected Bearer {MASK}" in logged
    assert leaks(logged) == []
