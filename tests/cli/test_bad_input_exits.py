"""Inputs that used to end in a traceback: each now ends in one clear line and the exit code the design
gives it (2 bad input or configuration, 4 a journal that cannot be written), or, for a reader that stops
reading, in no message at all and the command's usual exit code."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from broadcaster.cli import SERVE_WHILE_UNREACHABLE, WHILE_UNREACHABLE, explain
from broadcaster.domain.errors import JournalUnreachable
from broadcaster.store.sqlite import SqliteStore
from tests.cli.test_cli import journaled_updates
from tests.support.helpers import cli_env, run_cli
from tests.support.journal import planned, post
from tests.support.redis import free_port

SEND = ("send", "--title", "T", "--status", "investigating", "--message", "M")
TOO_FAR = "too far in the future (at most 3653 days, about ten years, ahead)"


def assert_one_line(stderr: str, expected: str) -> None:
    """The whole of stderr is the one line `broadcaster: <expected>`: no traceback, nothing else."""
    assert stderr == f"broadcaster: {expected}\n", stderr


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--next-update", "99999999999d"], f"--next-update '99999999999d': {TOO_FAR}"),
        (["--next-update", "3000000d"], f"--next-update '3000000d': {TOO_FAR}"),
        (["--next-update", "87673h"], f"--next-update '87673h': {TOO_FAR}"),
        (["--next-update", "2999-01-01T00:00Z"], f"--next-update '2999-01-01T00:00Z': {TOO_FAR}"),
        (["--next-update", "0001-01-01T00:00+05:00"], "--next-update '0001-01-01T00:00+05:00': out of range"),
    ],
)
def test_a_next_update_beyond_reach_exits_2_saying_the_limit(tmp_path: Path, flags: list[str], expected: str) -> None:
    result = run_cli(*SEND, *flags, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line(result.stderr, expected)
    assert journaled_updates(tmp_path) == 0


def test_a_maintenance_start_near_the_year_9999_exits_2_saying_the_limit(tmp_path: Path) -> None:
    """9999-12-31T23:00-05:00 is a time in the year 10000 once in UTC: converting it used to overflow."""
    when = "9999-12-31T23:00-05:00"
    maintenance = ("send", "--title", "DB upgrade", "--status", "scheduled", "--message", "M")
    result = run_cli(*maintenance, "--scheduled-for", when, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line(result.stderr, f"--scheduled-for '{when}': {TOO_FAR}")
    assert journaled_updates(tmp_path) == 0


def test_ten_years_ahead_is_still_accepted(tmp_path: Path) -> None:
    result = run_cli(*SEND, "--next-update", "3653d", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert journaled_updates(tmp_path) == 1


def test_a_title_with_a_noncharacter_exits_2_naming_field_and_code_point(tmp_path: Path) -> None:
    """U+FFFE would make history.atom invalid XML for every strict feed reader."""
    result = run_cli(
        "send", "--title", "API \ufffe errors", "--status", "investigating", "--message", "M", cwd=tmp_path
    )
    assert result.returncode == 2
    expected = "--title: contains a noncharacter (U+FFFE) at position 4, which XML (the Atom feed) cannot carry"
    assert_one_line(result.stderr, expected)
    assert journaled_updates(tmp_path) == 0


def test_an_undecodable_byte_in_a_title_exits_2_naming_field_and_code_point(tmp_path: Path) -> None:
    """Python turns the byte 0xFF on a command line into the lone surrogate U+DCFF (and back when it runs us)."""
    result = run_cli("send", "--title", "API \udcff", "--status", "investigating", "--message", "M", cwd=tmp_path)
    assert result.returncode == 2
    expected = "--title: contains a lone surrogate (U+DCFF) at position 4, which XML (the Atom feed) cannot carry"
    assert_one_line(result.stderr, expected)
    assert journaled_updates(tmp_path) == 0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--wait", "-5"], "'-5': give 0 to 86400 seconds"),
        (["--wait=-0.001"], "'-0.001': give 0 to 86400 seconds"),
        (["--wait", "86400.5"], "'86400.5': give 0 to 86400 seconds"),
        (["--wait", "nan"], "'nan': give 0 to 86400 seconds"),
        (["--wait", "inf"], "'inf': give 0 to 86400 seconds"),
        (["--wait", "soon"], "'soon' is not a number of seconds"),
    ],
)
def test_a_wait_outside_0_to_86400_seconds_exits_2(tmp_path: Path, flags: list[str], expected: str) -> None:
    result = run_cli(*SEND, *flags, cwd=tmp_path)
    assert result.returncode == 2
    # argparse prints the usage first; its last line is the error.
    assert result.stderr.splitlines()[-1] == f"broadcaster send: error: argument --wait: {expected}"
    assert "Traceback" not in result.stderr
    assert journaled_updates(tmp_path) == 0


@pytest.mark.parametrize("seconds", ["0", "86400"])
def test_a_wait_of_0_or_86400_seconds_is_accepted(tmp_path: Path, seconds: str) -> None:
    result = run_cli(*SEND, "--wait", seconds, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert journaled_updates(tmp_path) == 1


def test_malformed_json_in_an_environment_variable_exits_2_naming_it_not_its_value(tmp_path: Path) -> None:
    value = '[{"url":"https://hooks.example.com/T0/sekrit"'
    result = run_cli("status", cwd=tmp_path, env={"BROADCASTER_WEBHOOK__TARGETS": value})
    assert result.returncode == 2
    assert_one_line(
        result.stderr,
        "configuration error: environment variable BROADCASTER_WEBHOOK__TARGETS is not valid JSON "
        "(Expecting ',' delimiter: line 1 column 46); the value is not shown, as it may hold a secret",
    )
    assert "sekrit" not in result.stdout + result.stderr


def test_serve_on_a_port_in_use_exits_2_naming_the_address(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line(
        result.stderr,
        f"configuration error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(choose another --port or [service] port, or --host)",
    )
    assert result.stdout == ""  # never got as far as serving


def test_a_journal_server_out_of_reach_exits_4_saying_where_to_post_meanwhile(tmp_path: Path) -> None:
    """Nothing journaled, as when the disk fails (exit 4): not the caller's mistake, so not exit 2."""
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    (tmp_path / "broadcaster.toml").write_text(f'[store]\nurl = "{url}"\n')
    result = run_cli(*SEND, cwd=tmp_path)
    assert result.returncode == 4
    [line] = result.stderr.splitlines()
    assert line.startswith(f"broadcaster: journal open failed: cannot reach Redis at {url} (Connection refused);")
    assert line.endswith(f"nothing was read; {WHILE_UNREACHABLE}")
    assert result.stdout == ""


def test_check_with_the_journal_server_out_of_reach_reports_it_as_a_failed_check(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    (tmp_path / "broadcaster.toml").write_text(f'[store]\nurl = "{url}"\n')
    result = run_cli("check", "--json", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    [journal] = report["results"]
    assert report["ok"] is False
    assert (journal["channel"], journal["target"], journal["verdict"]) == ("journal", url, "failed")
    assert "cannot reach Redis" in journal["detail"]


def test_serve_without_a_replica_and_the_journal_server_out_of_reach_says_how_to_start(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    (tmp_path / "broadcaster.toml").write_text(f'[store]\nurl = "{url}"\nreplica = false\n')
    result = run_cli("serve", "--port", "0", cwd=tmp_path)
    assert result.returncode == 4
    [line] = result.stderr.splitlines()
    assert line.endswith(f"nothing was read; {SERVE_WHILE_UNREACHABLE}")


def test_a_write_the_journal_server_never_acknowledged_exits_4_without_blaming_the_disk() -> None:
    unreachable = JournalUnreachable("journal write failed: cannot reach Redis at redis://cache:6379/0 (reset)")
    message, code = explain(unreachable)
    assert code == 4
    assert message == f"{unreachable}; {WHILE_UNREACHABLE}"
    assert "disk" not in message


def test_status_into_a_reader_that_stops_after_one_line_exits_0_quietly(tmp_path: Path) -> None:
    """`broadcaster status ID | head -1`: 3,000 deliveries print far more than a pipe holds, so the CLI is
    still writing when the reader closes its end."""
    update_id = asyncio.run(_journal_an_update_with_many_deliveries(tmp_path, 3000))
    with subprocess.Popen(
        [sys.executable, "-m", "broadcaster", "status", update_id],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        try:
            first = child.stdout.readline()
            child.stdout.close()
            stderr = child.stderr.read()
            code = child.wait(timeout=60)
        except BaseException:
            child.kill()
            raise
    assert first.startswith(f"Update {update_id} of incident ")
    assert code == 0
    assert stderr == ""


async def _journal_an_update_with_many_deliveries(workdir: Path, count: int) -> str:
    journal = SqliteStore(workdir / "var" / "broadcaster.db", url="sqlite:///var/broadcaster.db")
    await journal.open()
    try:
        accepted = await post(journal, planned(*(f"target-{n:05d}" for n in range(count)), name="webhook"))
    finally:
        await journal.close()
    return accepted.update.id


JOURNAL_FILE_LIMIT = 36 * 1024
"""Above the 32 KiB shared-memory index SQLite keeps beside the journal, below what one update's pages
take in its write-ahead log (nine pages of 4 KiB and their headers)."""


def _journal_file_limit() -> None:
    """In the child: writes past JOURNAL_FILE_LIMIT bytes of any file fail with EFBIG, as on a full disk.
    SIGXFSZ, which would kill the process instead, is ignored (Python ignores it anyway; this says so)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (JOURNAL_FILE_LIMIT, JOURNAL_FILE_LIMIT))


def test_a_journal_that_cannot_be_written_exits_4_and_acknowledges_nothing(tmp_path: Path) -> None:
    assert run_cli(*SEND, cwd=tmp_path).returncode == 0  # the journal exists, with one update
    big_update = ("send", "--title", "Checkout errors", "--status", "investigating", "--message", "x" * 5000)
    result = subprocess.run(
        [sys.executable, "-m", "broadcaster", *big_update, "--json"],
        cwd=tmp_path,
        env=cli_env(),
        preexec_fn=_journal_file_limit,  # no threads in this test process to deadlock the fork
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 4
    assert_one_line(
        result.stderr,
        "the journal could not be written, so nothing was acknowledged (journal write failed: disk I/O error); "
        "free disk space or fix the disk, then run the command again",
    )
    assert result.stdout == ""
    assert journaled_updates(tmp_path) == 1
    assert json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)["incidents"][0]["name"] == "T"
