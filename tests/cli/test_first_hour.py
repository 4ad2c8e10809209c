"""A new commander's first hour with the CLI (issue 22): errors in the words typed, suggestions for typos,
a subcommand's own usage, idempotency keys that refuse other content, one wording for unknown ids, pauses
named with their remedy, one time format, a quiet start of `serve`, and maintenance windows that make sense."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster.domain.errors import InputError
from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.transitions import apply_update
from tests.cli.test_cli import journaled_updates, open_incident
from tests.support.helpers import REPO, cli_env, run_cli
from tests.support.serve import serving

SEND = ("send", "--title", "T", "--status", "investigating", "--message", "M")
MAINTENANCE = ("send", "--title", "DB upgrade", "--status", "scheduled", "--message", "Read-only.")
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ")
ALL_TIMES = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d[^\s)]*(?: UTC)?")


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a refusal prints, after checking it is a refusal: exit 2, nothing else on stderr."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def iso_in(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%MZ")


# Errors name the flag typed, not the field behind it.


def test_a_next_update_in_the_past_names_the_flag_the_value_typed_and_the_time_now(tmp_path: Path) -> None:
    line = refused(run_cli(*SEND, "--next-update", "2020-01-01T00:00Z", cwd=tmp_path))
    assert re.fullmatch(
        rf"broadcaster: --next-update '2020-01-01T00:00Z' is in the past \(it is {STAMP.pattern} now\)", line
    )
    assert journaled_updates(tmp_path) == 0


def test_a_window_ending_before_it_starts_names_both_flags(tmp_path: Path) -> None:
    start = iso_in(timedelta(days=2))
    result = run_cli(
        *MAINTENANCE, "--scheduled-for", start, "--scheduled-until", iso_in(timedelta(days=1)), cwd=tmp_path
    )
    assert refused(result) == "broadcaster: --scheduled-until must be after --scheduled-for"


def test_a_resolved_incident_is_reopened_with_the_flag_on_the_cli_and_the_field_in_the_api(tmp_path: Path) -> None:
    incident = open_incident(tmp_path)
    done = run_cli("send", "--incident", incident, "--status", "resolved", "--message", "Fixed.", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    line = refused(
        run_cli("send", "--incident", incident, "--status", "identified", "--message", "Back.", cwd=tmp_path)
    )
    assert line.endswith("reopen it explicitly (--reopen)")
    assert '"reopen"' not in line
    # The API shows the domain's own words, which name the JSON field and no flag.
    now = datetime.now(UTC)
    current, _ = apply_update(UpdateDraft(title="T", status="investigating", message="M"), None, now)
    resolved, _ = apply_update(UpdateDraft(incident_id=current.id, status="resolved", message="M"), current, now)
    with pytest.raises(InputError) as api:
        apply_update(UpdateDraft(incident_id=current.id, status="identified", message="M"), resolved, now)
    assert str(api.value).endswith("reopen it explicitly (the command line's --reopen, the API's \"reopen\": true)")


# Typos of enumerated values get the nearest valid one.


TYPOS = [
    (
        ["--status", "investigatin", "--message", "M"],
        "--status: unknown status 'investigatin' (did you mean 'investigating'?)",
    ),
    ([*SEND[3:], "--impact", "majr"], "--impact: unknown impact 'majr' (did you mean 'major'?)"),
    (
        [*SEND[3:], "--component", "API=degraded"],
        "--component API: unknown state 'degraded' (did you mean 'degraded_performance'?)",
    ),
    ([*SEND[3:], "--channel", "mirorr"], "--channel: unknown channel 'mirorr' (did you mean 'mirror'?)"),
    (
        ["--status", "identified", "--template", "identifed"],
        "--template: unknown template 'identifed' (did you mean 'identified'?)",
    ),
]


@pytest.mark.parametrize(("flags", "expected"), TYPOS, ids=[flags[-2] for flags, _ in TYPOS])
def test_a_typo_of_a_listed_value_suggests_the_nearest(tmp_path: Path, flags: list[str], expected: str) -> None:
    line = refused(run_cli("send", "--title", "T", *flags, cwd=tmp_path))
    assert line.startswith(f"broadcaster: {expected}; one of "), line
    assert journaled_updates(tmp_path) == 0


def test_an_unknown_channel_to_pause_suggests_the_nearest(tmp_path: Path) -> None:
    line = refused(run_cli("pause", "emial", cwd=tmp_path))
    assert line == "broadcaster: unknown channel 'emial' (did you mean 'email'?); one of email, x, webhook, mirror"


# An unknown flag is the subcommand's error, with its usage.


@pytest.mark.parametrize(
    ("args", "command", "hint"),
    [
        ([*SEND, "--titel", "x"], "send", "--titel x (did you mean '--title'?)"),
        (["status", "--jsn"], "status", "--jsn (did you mean '--json'?)"),
        (["retry", "--faild"], "retry", "--faild (did you mean '--failed'?)"),
    ],
)
def test_an_unknown_flag_shows_the_subcommand_usage(tmp_path: Path, args: list[str], command: str, hint: str) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"usage: broadcaster {command} "), result.stderr
    assert result.stderr.splitlines()[-1] == f"broadcaster {command}: error: unrecognized arguments: {hint}"
    assert journaled_updates(tmp_path) == 0


def test_a_typo_of_a_required_flag_suggests_the_nearest_too(tmp_path: Path) -> None:
    result = run_cli("send", "--titel", "T", "--status", "s", "--message", "m", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: broadcaster send "), result.stderr
    assert result.stderr.splitlines()[-1] == (
        "broadcaster send: error: one of the arguments --title --incident is required; "
        "unrecognized argument --titel (did you mean '--title'?)"
    )


# Idempotency keys: the same flags are the same request; other content is refused.


def test_a_key_reused_with_other_content_is_refused_and_journals_nothing(tmp_path: Path) -> None:
    first = run_cli(*SEND, "--idempotency-key", "ic-7", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    other = ("send", "--title", "T", "--status", "identified", "--message", "M", "--idempotency-key", "ic-7")
    line = refused(run_cli(*other, cwd=tmp_path))
    assert line.startswith("broadcaster: --idempotency-key 'ic-7' was used before for an update with other content")
    assert journaled_updates(tmp_path) == 1


def test_a_rerun_with_a_relative_next_update_is_the_same_request(tmp_path: Path) -> None:
    args = (*SEND, "--next-update", "30m", "--idempotency-key", "ic-8")
    assert run_cli(*args, cwd=tmp_path).returncode == 0
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr.startswith("Already journaled as update ")
    assert "; not sent again.\n" in again.stderr
    assert "Journaled update" not in again.stderr
    assert journaled_updates(tmp_path) == 1


def test_the_same_components_and_channels_in_another_order_are_the_same_request(tmp_path: Path) -> None:
    # A webhook nobody listens to (the discard port, closed on loopback): sent once, its delivery waits.
    (tmp_path / "broadcaster.toml").write_text(
        '[webhook]\nenabled = true\n[[webhook.targets]]\nurl = "http://127.0.0.1:9/"\n'
    )
    flags = ("--component", "API=degraded_performance", "--component", "Web=operational")
    channels = ("--channel", "mirror", "--channel", "webhook")
    first = run_cli(*SEND, *flags, *channels, "--idempotency-key", "ic-9", "--wait", "0", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    reordered = (*flags[2:], *flags[:2], *channels[2:], *channels[:2])
    again = run_cli(*SEND, *reordered, "--idempotency-key", "ic-9", "--wait", "0", cwd=tmp_path)
    assert again.returncode == 3, again.stderr
    assert again.stderr.startswith("Already journaled as update ")
    assert journaled_updates(tmp_path) == 1


def test_make_demo_twice_opens_one_incident(tmp_path: Path) -> None:
    """The Makefile's own demo target, run twice in a fresh directory on this checkout's environment."""
    venv = REPO / ".venv"
    make = ["make", "-s", "-f", str(REPO / "Makefile"), "-o", str(venv / ".runtime"), f"VENV={venv}", "demo"]
    runs = [
        subprocess.run(make, check=False, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60)
        for _ in "12"
    ]
    assert [run.returncode for run in runs] == [0, 0], runs[1].stderr
    assert "Already journaled" not in runs[0].stderr
    assert "Already journaled as update" in runs[1].stderr
    assert journaled_updates(tmp_path) == 1


# One wording for an unknown id.


@pytest.mark.parametrize("unknown", ["NOSUCHID", "0123456789ab"])
def test_send_retry_and_status_say_an_id_is_unknown_alike(tmp_path: Path, unknown: str) -> None:
    retried = refused(run_cli("retry", "--update", unknown, cwd=tmp_path))
    shown = refused(run_cli("status", unknown, cwd=tmp_path))
    sent = refused(run_cli("send", "--incident", unknown, "--status", "identified", "--message", "M", cwd=tmp_path))
    wording = f"with id {unknown!r} in the journal (`broadcaster status` lists the incidents)"
    assert retried == f"broadcaster: no update {wording}"
    assert shown == f"broadcaster: no incident or update {wording}"
    assert sent == f"broadcaster: no incident {wording}"


# Pauses are named, with the command that lifts them.


def test_a_paused_channel_is_named_in_progress_summary_and_retry(tmp_path: Path) -> None:
    assert run_cli("pause", "mirror", cwd=tmp_path).returncode == 0
    held = run_cli(*SEND, cwd=tmp_path)
    assert held.returncode == 3
    hint = "mirror is paused: `broadcaster resume mirror`"
    resume = "`broadcaster retry` or `broadcaster serve` resumes them after `broadcaster resume mirror`."
    progress, summary = held.stderr.splitlines()[1], held.stderr.splitlines()[-2:]
    assert re.fullmatch(rf"\[\d\d:\d\d:\d\dZ\] mirror public: {re.escape(hint)}", progress), held.stderr
    assert summary == [f"{hint}.", f"Pending deliveries stay in the journal: {resume}"], held.stderr
    retried = run_cli("retry", cwd=tmp_path)
    assert retried.returncode == 3
    assert f"] mirror public: {hint}" in retried.stderr
    assert f"\n{hint}.\n" in retried.stderr
    assert retried.stderr.endswith(f"{resume}\n"), retried.stderr


def test_pausing_a_disabled_channel_warns_and_records_it(tmp_path: Path) -> None:
    paused = run_cli("pause", "email", cwd=tmp_path)
    assert paused.returncode == 0
    assert paused.stderr.startswith("warning: email is not enabled ([email] enabled = false)")
    assert "email paused" in run_cli("status", cwd=tmp_path).stdout
    assert run_cli("pause", "mirror", cwd=tmp_path).stderr == ""  # an enabled one: no warning


# Help and time formats.


def test_send_help_states_the_message_length_limit(tmp_path: Path) -> None:
    shown = " ".join(run_cli("send", "--help", cwd=tmp_path).stdout.split())
    assert "the update text, at most 5000 characters" in shown
    assert "at most 5,000 characters" in (REPO / "README.md").read_text()


def test_status_shows_every_time_in_one_format(tmp_path: Path) -> None:
    incident = open_incident(tmp_path)
    update = run_cli("status", incident, "--json", cwd=tmp_path).stdout.split('"update_id": "')[1][:12]
    texts = [run_cli("status", *args, cwd=tmp_path).stdout for args in ([], [incident], [update])]
    for text in texts:
        times = ALL_TIMES.findall(text)
        assert times, text
        assert all(STAMP.fullmatch(time) for time in times), times


# serve starts quietly.


def test_serve_logs_its_start_once_at_info(tmp_path: Path) -> None:
    for verbose in (True, False):
        with serving(tmp_path, *(["-v"] if verbose else [])) as served:
            pass
        err = served.stderr
        assert served.process.returncode == 0, err
        starts = [line for line in err.splitlines() if "listening on" in line]
        assert len(starts) == (1 if verbose else 0), err
        assert all(" INFO broadcaster.service: " in line for line in starts), starts
        assert "WARNING" not in err


# Maintenance windows.


def test_a_scheduled_maintenance_without_a_window_is_refused_naming_the_flags(tmp_path: Path) -> None:
    line = refused(run_cli(*MAINTENANCE, cwd=tmp_path))
    assert line == ("broadcaster: a scheduled maintenance needs its window: give --scheduled-for and --scheduled-until")
    assert journaled_updates(tmp_path) == 0


def test_a_maintenance_window_in_the_past_is_refused_naming_the_flag(tmp_path: Path) -> None:
    ended = run_cli(
        *MAINTENANCE,
        "--scheduled-for",
        iso_in(timedelta(days=-2)),
        "--scheduled-until",
        iso_in(timedelta(days=-1)),
        cwd=tmp_path,
    )
    assert re.fullmatch(
        r"broadcaster: --scheduled-until \S+ \S+Z is in the past \(it is \S+ \S+Z now\)", refused(ended)
    )
    started = run_cli(
        *MAINTENANCE, "--scheduled-for", iso_in(timedelta(hours=-1)), "--scheduled-until", "2h", cwd=tmp_path
    )
    assert refused(started).endswith("; a maintenance under way is in_progress")
    assert journaled_updates(tmp_path) == 0


def test_the_readme_maintenance_example_works_whenever_it_is_pasted(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    example = readme.split("# Scheduled maintenance")[1].split("```")[0].split("\n", 1)[1]
    env = cli_env({"PATH": f"{REPO / '.venv' / 'bin'}:{cli_env()['PATH']}"})
    result = subprocess.run(
        ["bash", "-c", example], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert journaled_updates(tmp_path) == 1
