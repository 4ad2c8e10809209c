"""The fallback CLI, run as a user runs it: a child process in a working directory, nothing else running."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import cli_env, run_cli


def journaled_updates(workdir: Path) -> int:
    db = workdir / "var" / "broadcaster.db"
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0])


def open_incident(workdir: Path) -> str:
    result = run_cli(
        "send", "--title", "API errors", "--status", "investigating", "--message", "Looking.", "--json", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    incident_id: str = json.loads(result.stdout)["incident_id"]
    return incident_id


def test_send_on_the_embedded_defaults_delivers_and_builds_the_mirror(tmp_path: Path) -> None:
    """No config file, no server, no network: the journal goes to ./var and the site to ./public."""
    result = run_cli(
        "send",
        "--title",
        "Database failover",
        "--status",
        "identified",
        "--message",
        "Writes are slow.",
        "--component",
        "API=degraded_performance",
        "--next-update",
        "30m",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "mirror" in result.stdout
    assert "delivered" in result.stdout
    assert "Journaled update" in result.stderr
    assert "Delivered on all 1 targets" in result.stderr
    assert (tmp_path / "public" / "index.html").is_file()
    summary = json.loads((tmp_path / "public" / "api/v2/summary.json").read_text())
    assert summary["incidents"][0]["name"] == "Database failover"
    assert journaled_updates(tmp_path) == 1


def test_json_output_matches_the_api_shape(tmp_path: Path) -> None:
    result = run_cli("send", "--title", "T", "--status", "investigating", "--message", "M", "--json", cwd=tmp_path)
    body = json.loads(result.stdout)
    assert set(body) == {"update_id", "incident_id", "deliveries"}
    assert [(d["channel"], d["target"], d["state"]) for d in body["deliveries"]] == [("mirror", "public", "delivered")]


BAD_INPUT = [
    (
        ["--title", "T", "--status", "broken", "--message", "M"],
        "--status: unknown status 'broken'; one of investigating",
    ),
    (["--title", "T", "--status", "investigating", "--message", ""], "--message: String should have at least 1"),
    (["--title", "A\x1b[31mB", "--status", "investigating", "--message", "M"], "--title: contains a control character"),
    (["--title", "T", "--status", "investigating", "--message", "M", "--channel", "pager"], "unknown channel 'pager'"),
    (
        ["--title", "T", "--status", "investigating", "--message", "M", "--channel", "email"],
        "channel 'email' is not enabled",
    ),
    (["--title", "T", "--status", "investigating", "--message", "M", "--component", "API"], "expected NAME=STATE"),
    (
        ["--title", "T", "--status", "investigating", "--message", "M", "--component", "API=melted"],
        "--component API: unknown state 'melted'; one of operational",
    ),
    (
        ["--title", "T", "--status", "investigating", "--message", "M", "--next-update", "2030-01-01T10:00"],
        "add a time zone",
    ),
    (["--title", "T", "--status", "investigating", "--message", "M", "--next-update", "soon"], "expected 30m"),
    (
        ["--incident", "0123456789ab", "--status", "identified", "--message", "M"],
        "no incident with id '0123456789ab' in the journal",
    ),
    (["--incident", "nope", "--status", "identified", "--message", "M"], "no incident with id 'nope' in the journal"),
    (["--title", "T", "--status", "scheduled", "--impact", "critical", "--message", "M"], "does not go with"),
    (["--status", "investigating", "--message", "M"], "one of the arguments --title --incident is required"),
]


@pytest.mark.parametrize(("args", "expected"), BAD_INPUT, ids=[e for _, e in BAD_INPUT])
def test_bad_input_exits_2_names_the_problem_and_journals_nothing(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    result = run_cli("send", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert journaled_updates(tmp_path) == 0
    assert not (tmp_path / "public").exists()


def test_an_update_to_a_resolved_incident_is_refused_without_reopen(tmp_path: Path) -> None:
    incident = open_incident(tmp_path)
    assert (
        run_cli("send", "--incident", incident, "--status", "resolved", "--message", "Fixed.", cwd=tmp_path).returncode
        == 0
    )
    refused = run_cli("send", "--incident", incident, "--status", "investigating", "--message", "Back.", cwd=tmp_path)
    assert refused.returncode == 2
    assert "--reopen" in refused.stderr
    assert journaled_updates(tmp_path) == 2
    reopened = run_cli(
        "send", "--incident", incident, "--status", "investigating", "--message", "Back.", "--reopen", cwd=tmp_path
    )
    assert reopened.returncode == 0, reopened.stderr
    assert journaled_updates(tmp_path) == 3


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("[mirror\n", "invalid TOML"),
        ("[mirror]\nenabled = 'sometimes'\n", "[mirror] enabled: Input should be a valid boolean"),
        ("[mirror]\ndirectory = 'x'\n", "[mirror] directory: unknown key (did you mean 'directories'?)"),
        ("[service]\nport = 70000\n", "[service] port: Input should be less than or equal to 65535"),
    ],
)
def test_a_broken_config_exits_2_naming_file_key_and_problem(tmp_path: Path, config: str, expected: str) -> None:
    (tmp_path / "site.toml").write_text(config)
    result = run_cli(
        "send", "--config", "site.toml", "--title", "T", "--status", "investigating", "--message", "M", cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith("broadcaster: configuration error: site.toml")
    assert expected in result.stderr
    assert journaled_updates(tmp_path) == 0


def test_pause_holds_resume_and_retry_release(tmp_path: Path) -> None:
    """A paused mirror keeps the update queued (exit 3); after resume, retry delivers it (exit 0)."""
    paused = run_cli("pause", "mirror", "--reason", "rewriting templates", cwd=tmp_path)
    assert paused.returncode == 0
    assert "mirror paused" in paused.stdout
    held = run_cli("send", "--title", "T", "--status", "investigating", "--message", "M", cwd=tmp_path)
    assert held.returncode == 3
    assert "pending" in held.stdout
    assert "broadcaster retry" in held.stderr
    assert not (tmp_path / "public" / "index.html").exists()
    overview = run_cli("status", cwd=tmp_path)
    assert "mirror paused (rewriting templates)" in overview.stdout
    assert "mirror pending" in overview.stdout
    assert run_cli("resume", "mirror", cwd=tmp_path).returncode == 0
    retried = run_cli("retry", cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert (tmp_path / "public" / "index.html").is_file()
    assert run_cli("retry", cwd=tmp_path).stderr.strip() == "Nothing is waiting to be delivered."


def test_pause_and_retry_refuse_unknown_channels_and_targets(tmp_path: Path) -> None:
    assert "unknown channel 'pager'" in run_cli("pause", "pager", cwd=tmp_path).stderr
    retry = run_cli("retry", "--channel", "pager", cwd=tmp_path)
    assert retry.returncode == 2
    assert "unknown channel 'pager'" in retry.stderr
    result = run_cli("pause", "mirror", "--target", "elsewhere", cwd=tmp_path)
    assert result.returncode == 2
    assert "mirror has no target 'elsewhere' (targets: public)" in result.stderr


def test_status_shows_the_ledger_of_an_incident_and_of_an_update(tmp_path: Path) -> None:
    incident = open_incident(tmp_path)
    ledger = run_cli("status", incident, cwd=tmp_path)
    assert ledger.returncode == 0
    assert "API errors" in ledger.stdout
    assert "mirror" in ledger.stdout
    update_id = json.loads(run_cli("status", incident, "--json", cwd=tmp_path).stdout)["updates"][0]["update_id"]
    attempts = run_cli("status", update_id, cwd=tmp_path)
    assert "attempt 1" in attempts.stdout
    assert "delivered" in attempts.stdout
    assert run_cli("status", "0123456789ab", cwd=tmp_path).returncode == 2


def test_message_can_come_from_standard_input(tmp_path: Path) -> None:
    text = "Line one.\n\nParagraph two with <b>markup</b>."
    result = run_cli(
        "send", "--title", "T", "--status", "investigating", "--message", "-", "--json", cwd=tmp_path, stdin=text
    )
    assert result.returncode == 0
    summary = json.loads((tmp_path / "public/api/v2/summary.json").read_text())
    assert summary["incidents"][0]["incident_updates"][0]["body"] == text


def test_an_idempotency_key_makes_a_repeated_send_harmless(tmp_path: Path) -> None:
    args = ("send", "--title", "T", "--status", "investigating", "--message", "M", "--idempotency-key", "ic-42")
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0
    assert "Already journaled" in again.stderr
    assert journaled_updates(tmp_path) == 1


def test_config_shows_effective_settings_with_secrets_masked(tmp_path: Path) -> None:
    result = run_cli("config", cwd=tmp_path, env={"BROADCASTER_AUTH__API_TOKENS": '["sekrit-token"]'})
    assert result.returncode == 0
    assert "sekrit-token" not in result.stdout + result.stderr
    shown = json.loads(result.stdout)
    assert shown["auth"]["api_tokens"] == ["**********"]
    assert shown["effective"]["store_url"] == "sqlite:///var/broadcaster.db"
    assert shown["effective"]["lanes"]["mirror"]["max_attempts"] == 10


def test_render_rebuilds_the_mirror_from_the_journal(tmp_path: Path) -> None:
    incident = open_incident(tmp_path)
    for path in sorted((tmp_path / "public").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    result = run_cli("render", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "public" / "incidents" / f"{incident}.html").is_file()
    assert "ok    mirror public: 13 of 13 files changed" in result.stdout


def test_check_preflights_without_sending(tmp_path: Path) -> None:
    ok = run_cli("check", cwd=tmp_path)
    assert ok.returncode == 0
    assert "ok    mirror public: writable" in ok.stdout
    assert journaled_updates(tmp_path) == 0
    (tmp_path / "public").rmdir()
    (tmp_path / "public").write_text("in the way")
    failing = run_cli("check", cwd=tmp_path)
    assert failing.returncode == 3
    assert "FAIL  mirror public: not writable" in failing.stdout


def test_python_dash_m_and_version(tmp_path: Path) -> None:
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("broadcaster ")


def test_a_mirror_only_send_never_imports_the_network_libraries(tmp_path: Path) -> None:
    """What keeps `send` fast when only the mirror is on: aiohttp, tweepy and aiosmtplib stay unloaded."""
    probe = (
        "import sys\n"
        "from broadcaster.cli import main\n"
        "code = main(['send', '--title', 'T', '--status', 'investigating', '--message', 'M'])\n"
        "heavy = sorted(m for m in ('aiohttp', 'tweepy', 'aiosmtplib') if m in sys.modules)\n"
        "print(code, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.splitlines()[-1] == "0 []", result.stderr


def test_the_cli_records_who_posted_and_only_the_ledger_shows_it(tmp_path: Path) -> None:
    """The operating system's user is the author of a CLI update: `status` shows it, the status site never."""
    user = {"LOGNAME": "commander-ann"}
    sent = run_cli(
        "send", "--title", "T", "--status", "investigating", "--message", "M", "--json", cwd=tmp_path, env=user
    )
    assert sent.returncode == 0, sent.stderr
    incident = json.loads(sent.stdout)["incident_id"]
    ledger = run_cli("status", incident, cwd=tmp_path)
    assert " by commander-ann" in ledger.stdout
    ledger_json = json.loads(run_cli("status", incident, "--json", cwd=tmp_path).stdout)
    assert ledger_json["updates"][0]["author"] == "commander-ann"
    site = "".join(path.read_text() for path in (tmp_path / "public").rglob("*") if path.is_file())
    assert "commander-ann" not in site
