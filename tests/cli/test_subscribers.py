"""`broadcaster subscribers`: the operator's list in the journal, and a send mailing it, filtered by the
components each subscriber follows (a real SMTP server takes the mail)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from broadcaster.domain.subscriptions import Subscriber
from broadcaster.runtime import open_runtime
from config import load_settings
from tests.channels.email.smtp_server import smtp_server
from tests.conftest import WriteConfig
from tests.support.helpers import run_cli

LIST = "email,components\nann@example.org,API;Website\nbo@example.org,\n"


def test_import_list_export_round_trip(workdir: Path) -> None:
    (workdir / "list.csv").write_text(LIST)
    imported = run_cli("subscribers", "import", "list.csv", cwd=workdir)
    assert imported.returncode == 0, imported.stderr
    assert "Imported 2 subscribers (2 new, 0 updated)" in imported.stderr
    listed = run_cli("subscribers", "list", "--json", cwd=workdir)
    rows = json.loads(listed.stdout)
    assert [(r["address"], r["components"], r["source"]) for r in rows] == [
        ("ann@example.org", ["api", "website"], "import"),
        ("bo@example.org", [], "import"),
    ]
    exported = run_cli("subscribers", "export", cwd=workdir)
    assert exported.stdout == "email,components\nann@example.org,api;website\nbo@example.org,\n"
    (workdir / "again.csv").write_text(exported.stdout)
    again = run_cli("subscribers", "import", "again.csv", cwd=workdir)
    assert "(0 new, 2 updated)" in again.stderr


def test_a_file_with_bad_lines_imports_nothing_unless_told_to_skip_them(workdir: Path) -> None:
    (workdir / "list.csv").write_text("ann@example.org\nnot an address\n")
    refused = run_cli("subscribers", "import", "list.csv", cwd=workdir)
    assert refused.returncode == 2
    assert "line 2: 'not an address' is not an email address" in refused.stderr
    assert "nothing was imported" in refused.stderr
    assert json.loads(run_cli("subscribers", "list", "--json", cwd=workdir).stdout) == []
    skipped = run_cli("subscribers", "import", "list.csv", "--skip-bad-lines", cwd=workdir)
    assert skipped.returncode == 0 and "Skipped 1 bad line." in skipped.stderr
    missing = run_cli("subscribers", "import", "nowhere.csv", cwd=workdir)
    assert missing.returncode == 2 and "cannot read nowhere.csv" in missing.stderr


def test_add_and_remove_say_what_they_did(workdir: Path) -> None:
    added = run_cli("subscribers", "add", "Carl@Example.org", "--component", "API", cwd=workdir)
    assert added.returncode == 0 and "Added carl@example.org." in added.stderr
    assert run_cli("subscribers", "add", "not-an-address", cwd=workdir).returncode == 2
    assert "Removed carl@example.org" in run_cli("subscribers", "remove", "carl@example.org", cwd=workdir).stderr
    gone = run_cli("subscribers", "remove", "carl@example.org", cwd=workdir)
    assert gone.returncode == 2 and "no subscriber 'carl@example.org'" in gone.stderr


def test_send_mails_the_journal_subscribers_who_follow_what_it_touches(
    workdir: Path, write_config: WriteConfig
) -> None:
    """No subscribers file at all: the journal's list is the audience, filtered by components."""
    with smtp_server() as server:
        write_config(
            f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
            'from_addr = "Status <status@example.com>"\n[mirror]\nenabled = false\n'
        )
        (workdir / "list.csv").write_text("email,components\nann@example.org,API\nbo@example.org,Website\n")
        assert run_cli("subscribers", "import", "list.csv", cwd=workdir).returncode == 0
        sent = run_cli(
            "send",
            "--title",
            "API errors",
            "--status",
            "investigating",
            "--message",
            "Calls fail.",
            "--component",
            "API=partial_outage",
            cwd=workdir,
        )
        assert sent.returncode == 0, sent.stderr
        assert [r.recipients for r in server.recorder.received] == [("ann@example.org",)]


def test_a_subscriber_s_own_choice_wins_over_the_operator_s_list(workdir: Path, write_config: WriteConfig) -> None:
    """Listed in the file for API, but chose Website on the manage page: an update on Website reaches them."""
    with smtp_server() as server:
        (workdir / "list.csv").write_text("email,components\nann@example.org,API\n")
        write_config(
            f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
            'from_addr = "Status <status@example.com>"\nsubscribers_file = "list.csv"\n[mirror]\nenabled = false\n'
        )
        assert run_cli("subscribers", "add", "ann@example.org", "--component", "Website", cwd=workdir).returncode == 0
        sent = run_cli(
            "send",
            "--title",
            "Slow pages",
            "--status",
            "investigating",
            "--message",
            "Slow.",
            "--component",
            "Website=degraded_performance",
            cwd=workdir,
        )
        assert sent.returncode == 0, sent.stderr
        assert [r.recipients for r in server.recorder.received] == [("ann@example.org",)]


def test_webhook_endpoints_are_listed_and_removed_by_id_never_by_url(workdir: Path) -> None:
    url = "https://hooks.example.com/T0KEN-in-the-path?key=s3cret"

    async def save() -> None:
        runtime = await open_runtime(load_settings(None))
        try:
            await runtime.store.save_subscribers([Subscriber(kind="webhook", address=url, secret="whsec_AAAA")])
        finally:
            await runtime.close()

    asyncio.run(save())
    listed = run_cli("subscribers", "list", "--webhooks", "--json", cwd=workdir)
    (row,) = json.loads(listed.stdout)
    assert row["host"] == "https://hooks.example.com" and "T0KEN" not in listed.stdout + listed.stderr
    removed = run_cli("subscribers", "remove", row["id"], cwd=workdir)
    assert removed.returncode == 0 and "hooks.example.com" in removed.stderr and "T0KEN" not in removed.stderr
    assert json.loads(run_cli("subscribers", "list", "--webhooks", "--json", cwd=workdir).stdout) == []
