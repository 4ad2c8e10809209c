"""Terminal escape sequences in text from outside (an SMTP server's reply, a name in the configuration)
never reach the operator's terminal or a text file raw: they are shown as visible escapes (\\u001b)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.channels.email.smtp_server import HOSTNAME, Script, smtp_server
from tests.support.helpers import run_cli

# Colour red, set the terminal's title (OSC ... BEL), and clear the screen with the one-byte CSI.
HOSTILE = "\x1b[31mNo such user\x1b]0;owned\x07 \x9b2J"
SHOWN = "\\u001b[31mNo such user\\u001b]0;owned\\u0007 \\u009b2J"
RAW = ("\x1b", "\x07", "\x9b")


def assert_no_raw_controls(*texts: str) -> None:
    for text in texts:
        assert not any(char in text for char in RAW), repr(text)


def email_config(workdir: Path, port: int) -> None:
    """Email on, to the local server (its name pinned to 127.0.0.1), mirror off; two subscribers."""
    (workdir / "subscribers.txt").write_text("alice@example.org\nbob@example.org\n")
    (workdir / "broadcaster.toml").write_text(
        f'[email]\nenabled = true\nhost = "{HOSTNAME}"\nport = {port}\nsecurity = "none"\n'
        'from_addr = "Example Status <status@example.com>"\nsubscribers_file = "subscribers.txt"\n'
        'unsubscribe_url = "https://status.example.com/unsubscribe"\n'
        '[mirror]\nenabled = false\npublic_url = "https://status.example.com"\n'
        f'[network]\nresolve = {{ "{HOSTNAME}:{port}" = "127.0.0.1:{port}" }}\n'
    )


def test_a_bounce_reply_with_escapes_reaches_the_suppression_file_escaped(tmp_path: Path) -> None:
    with smtp_server(Script(refuse={"bob@example.org": f"550 5.1.1 {HOSTILE}"})) as server:
        email_config(tmp_path, server.port)
        sent = run_cli("send", "--title", "T", "--status", "investigating", "--message", "M", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert "1 accepted, 1 refused (550) of 2" in sent.stdout
    address, _stamp, reason = (tmp_path / "var" / "email-suppressed.txt").read_text().rstrip("\n").split("\t")
    assert (address, reason) == ("bob@example.org", f"550 5.1.1 {SHOWN}")


def test_a_refusal_with_escapes_is_shown_escaped_by_send_and_status(tmp_path: Path) -> None:
    """The relay refuses the sender: its reply is the delivery's error, in send's progress line and
    summary table, and in the ledger `broadcaster status` prints."""
    with smtp_server(Script(refuse_sender=f"553 5.7.1 {HOSTILE}")) as server:
        email_config(tmp_path, server.port)
        send = ("send", "--title", "T", "--status", "investigating", "--message", "M")
        sent = run_cli(*send, "--wait", "5", "--json", cwd=tmp_path)
    assert sent.returncode == 3
    error = f"no relay would take the mail: sender refused (553 5.7.1 {SHOWN})"
    assert f"email subscribers: failed: {error}" in sent.stderr
    body = json.loads(sent.stdout)
    assert body["deliveries"][0]["error"] == error  # the journal keeps the reply as it was shown
    ledger = run_cli("status", body["update_id"], cwd=tmp_path)
    assert ledger.returncode == 0
    assert "attempt 1 " in ledger.stdout
    assert ledger.stdout.rstrip().endswith(f"failed {error}")
    assert_no_raw_controls(sent.stdout, sent.stderr, ledger.stdout, ledger.stderr)


def test_a_target_named_with_escapes_in_the_config_is_shown_escaped(tmp_path: Path) -> None:
    """A mirror directory's name is its delivery target: printed by send (progress and table) and by
    status, raw in the journal. In JSON the same escapes are JSON's own, so the value reads back intact."""
    directory = "site\x1b[31m\x9b2J"
    (tmp_path / "broadcaster.toml").write_text(f"[mirror]\ndirectories = [{json.dumps(directory)}]\n")
    sent = run_cli("send", "--title", "T", "--status", "investigating", "--message", "M", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    shown = "site\\u001b[31m\\u009b2J"
    assert f"mirror {shown}: delivered" in sent.stderr
    assert f"mirror   {shown}  delivered" in sent.stdout
    overview = run_cli("status", "--json", cwd=tmp_path)
    incident = json.loads(overview.stdout)["incidents"][0]["id"]
    ledger = run_cli("status", incident, cwd=tmp_path)
    as_json = run_cli("status", incident, "--json", cwd=tmp_path)
    assert ledger.returncode == as_json.returncode == 0
    assert f"mirror   {shown}  delivered" in ledger.stdout
    assert '"target": "site\\u001b[31m\\u009b2J"' in as_json.stdout
    assert json.loads(as_json.stdout)["updates"][0]["deliveries"][0]["target"] == directory
    assert_no_raw_controls(sent.stdout, sent.stderr, ledger.stdout, as_json.stdout)


def test_a_component_name_with_an_escape_is_refused_and_named_escaped(tmp_path: Path) -> None:
    result = run_cli(
        "send",
        "--title",
        "T",
        "--status",
        "investigating",
        "--message",
        "M",
        "--component",
        "API\x1b[31m=major_outage",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    expected = "broadcaster: --component API\\u001b[31m: contains a control character (U+001B) at position 3\n"
    assert result.stderr == expected


def test_a_configured_component_with_an_escape_is_refused_and_named_escaped(tmp_path: Path) -> None:
    """[mirror] components are written into every page of the mirror: refused at start-up instead."""
    (tmp_path / "broadcaster.toml").write_text('[mirror]\ncomponents = ["API", "DB\\u001b[31m"]\n')
    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "broadcaster: configuration error: broadcaster.toml: [mirror] components[1]: contains a character a "
        "status page cannot show (U+001B) (got 'DB\\x1b[31m')\n"
    )


def test_a_page_title_with_a_noncharacter_is_refused(tmp_path: Path) -> None:
    """The page title is history.atom's title: U+FFFF there would make the feed invalid XML."""
    (tmp_path / "broadcaster.toml").write_text('[mirror]\npage_title = "Status \\uffff"\n')
    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "broadcaster: configuration error: broadcaster.toml: [mirror] page_title: contains a character a "
        "status page cannot show (U+FFFF) (got 'Status \\uffff')\n"
    )


async def test_a_receivers_reason_phrase_with_escapes_is_logged_escaped(tmp_path: Path) -> None:
    """A webhook receiver answering 410 with escapes in its reason phrase (written by hand: aiohttp's own
    server would refuse to send them): the lane's log line pausing the target, like every other line on
    stderr, shows them escaped."""

    async def gone(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 410 Gone \x1b[31mred\x1b]0;owned\x07\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(gone, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    (tmp_path / "broadcaster.toml").write_text(
        "[mirror]\nenabled = false\n[webhook]\nenabled = true\n[[webhook.targets]]\n"
        f'url = "http://127.0.0.1:{port}/hook"\nname = "receiver"\n'
    )
    try:
        send = ("send", "--title", "T", "--status", "investigating", "--message", "M", "--wait", "5")
        sent = await asyncio.to_thread(run_cli, *send, cwd=tmp_path)
    finally:
        server.close()
        await server.wait_closed()
    assert sent.returncode == 3
    assert "target receiver is gone (HTTP 410 Gone \\u001b[31mred\\u001b]0;owned\\u0007" in sent.stderr
    assert_no_raw_controls(sent.stdout, sent.stderr)
