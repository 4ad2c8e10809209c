"""Message templates: shipped per status and configurable ([templates]), their placeholders checked when the
configuration is read and filled from the update, used by `broadcaster send --template NAME`."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster.domain.templates import fill_template
from config import ConfigError, load_settings
from config.templates import DEFAULT_TEMPLATES
from tests.conftest import WriteConfig
from tests.support.helpers import run_cli

DUE = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)


def messages(workdir: Path) -> list[str]:
    with sqlite3.connect(workdir / "var" / "broadcaster.db") as journal:
        return [row[0] for row in journal.execute("SELECT message FROM updates ORDER BY created_at")]


@pytest.mark.parametrize(
    ("components", "listed"),
    [([], "our services"), (["API"], "API"), (["API", "Web"], "API and Web"), (["A", "B", "C"], "A, B and C")],
)
def test_components_are_listed_as_a_sentence_would(components: list[str], listed: str) -> None:
    assert fill_template("{components} is down.", components=components, next_update_at=None) == f"{listed} is down."


def test_the_next_update_is_a_time_or_a_promise_to_tell() -> None:
    assert (
        fill_template("Update {next_update}.", components=[], next_update_at=DUE) == "Update by 2026-12-05 14:30 UTC."
    )
    assert fill_template("Update {next_update}.", components=[], next_update_at=None) == (
        "Update as soon as we know more."
    )
    assert fill_template("{{literal}}", components=[], next_update_at=None) == "{literal}"


def test_one_template_ships_per_status_and_the_configuration_changes_adds_or_withdraws(
    write_config: WriteConfig,
) -> None:
    assert set(DEFAULT_TEMPLATES) == {
        "investigating",
        "identified",
        "monitoring",
        "resolved",
        "scheduled",
        "in_progress",
        "verifying",
        "completed",
    }
    settings = load_settings(
        write_config('[templates]\nresolved = ""\ninvestigating = "Looking at {components}."\ndb = "DB slow."\n')
    )
    assert "resolved" not in settings.templates
    assert settings.templates["investigating"] == "Looking at {components}."
    assert settings.templates["db"] == "DB slow."
    assert settings.templates["identified"] == DEFAULT_TEMPLATES["identified"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [("Hello {who}.", "unknown placeholder {who}"), ("{components!r}", "unknown placeholder"), ("{", "not a template")],
)
def test_a_template_with_an_unknown_placeholder_is_a_configuration_error(
    write_config: WriteConfig, text: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match="templates") as refused:
        load_settings(write_config(f"[templates]\nbad = {json.dumps(text)}\n"))
    assert problem in str(refused.value)


def test_send_starts_from_a_template_filled_from_its_flags(tmp_path: Path) -> None:
    opened = run_cli(
        "send",
        "--title",
        "Checkout errors",
        "--status",
        "investigating",
        "--template",
        "investigating",
        "--component",
        "Checkout=partial_outage",
        "--component",
        "API=degraded_performance",
        "--next-update",
        "30m",
        "--json",
        cwd=tmp_path,
    )
    assert opened.returncode == 0, opened.stderr
    [message] = messages(tmp_path)
    assert message.startswith("We are investigating problems with Checkout and API. ")
    assert "We will post an update by " in message
    incident = json.loads(opened.stdout)["incident_id"]
    # Resolving names no component: the template speaks of those the incident has not operational.
    resolved = run_cli("send", "--incident", incident, "--status", "resolved", "--template", "resolved", cwd=tmp_path)
    assert resolved.returncode == 0, resolved.stderr
    assert messages(tmp_path)[-1].startswith("This incident is resolved: Checkout and API works normally again.")


def test_an_unknown_template_or_both_message_and_template_are_refused(tmp_path: Path) -> None:
    unknown = run_cli("send", "--title", "T", "--status", "investigating", "--template", "nope", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "--template: unknown template 'nope'; one of completed, identified, " in unknown.stderr
    both = run_cli(
        "send",
        "--title",
        "T",
        "--status",
        "investigating",
        "--template",
        "investigating",
        "--message",
        "M",
        cwd=tmp_path,
    )
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    assert not (tmp_path / "var" / "broadcaster.db").exists() or messages(tmp_path) == []


def test_a_template_due_time_follows_the_next_update_flag(tmp_path: Path) -> None:
    due = (datetime.now(UTC) + timedelta(hours=2)).replace(second=0, microsecond=0)
    result = run_cli(
        "send",
        "--title",
        "T",
        "--status",
        "identified",
        "--template",
        "identified",
        "--next-update",
        due.isoformat(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert messages(tmp_path)[-1].endswith(f"We will post an update by {due:%Y-%m-%d %H:%M} UTC.")
