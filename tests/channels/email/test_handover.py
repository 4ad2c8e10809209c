"""Work passes from one process to another without anyone being mailed twice: a `send` never takes another
update's fan-out, and a process that stops mid fan-out (its --wait is over) ends it between two
transactions, saves it, and hands it back for the next one to finish."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tests.channels.email.conftest import Configure, Relay
from tests.channels.email.smtp_server import Received, Script, smtp_server
from tests.support.helpers import run_cli

SUBSCRIBERS = 400


def mailed_per_subject(received: Sequence[Received]) -> dict[str, Counter[str]]:
    by_subject: dict[str, Counter[str]] = {}
    for item in received:
        by_subject.setdefault(str(item.message["Subject"]), Counter()).update(item.recipients)
    return by_subject


def test_a_send_leaves_another_updates_fan_out_alone(configure: Configure, workdir: Path) -> None:
    """Update B waits (email paused); then, email resumed, `send` of update A goes out while B is still
    pending. A's send mails A only, and `retry` mails B: everyone gets each update once."""
    people = [f"person{i:04d}@example.org" for i in range(SUBSCRIBERS)]
    with smtp_server(Script(reply_delay=0.003)) as server:
        configure(Relay(server.port), subscribers=people)
        assert run_cli("pause", "email", cwd=workdir).returncode == 0
        held = run_cli(
            "send", "--title", "Update B", "--status", "investigating", "--message", "B.", "--wait", "1", cwd=workdir
        )
        assert held.returncode == 3, held.stderr
        assert run_cli("resume", "email", cwd=workdir).returncode == 0
        sent = run_cli("send", "--title", "Update A", "--status", "investigating", "--message", "A.", cwd=workdir)
        assert sent.returncode == 0, sent.stderr
        after_a = mailed_per_subject(server.recorder.received)
        retried = run_cli("retry", cwd=workdir)
        assert retried.returncode == 0, retried.stderr
        mailed = mailed_per_subject(server.recorder.received)
    assert [subject for subject in after_a if "Update B" in subject] == []  # A's send never touched B
    assert sorted("Update A" in subject for subject in mailed) == [False, True]  # one subject each, A and B
    for subject, counts in mailed.items():
        assert set(counts) == set(people), subject
        assert [address for address, count in counts.items() if count > 1] == [], subject


def test_a_process_stopping_mid_fan_out_hands_it_over_without_repeats(configure: Configure, workdir: Path) -> None:
    """`retry --wait 0.3` stops while the fan-out is running: the workers finish the transaction in hand,
    the progress is saved, the delivery is handed back. The next `retry` finishes it, mailing nobody twice."""
    people = [f"person{i:04d}@example.org" for i in range(SUBSCRIBERS * 2)]
    with smtp_server(Script(reply_delay=0.01)) as server:
        configure(Relay(server.port), subscribers=people, email={"pool_size": 4})
        assert run_cli("pause", "email", cwd=workdir).returncode == 0
        assert (
            run_cli(
                "send", "--title", "T", "--status", "investigating", "--message", "M", "--wait", "0", cwd=workdir
            ).returncode
            == 3
        )
        assert run_cli("resume", "email", cwd=workdir).returncode == 0
        cut_short = run_cli("retry", "--wait", "0.3", cwd=workdir)
        assert cut_short.returncode == 3, cut_short.stderr
        partial = len(server.recorder.received)
        status = run_cli("status", cwd=workdir)
        finished = run_cli("retry", cwd=workdir)
        assert finished.returncode == 0, finished.stderr
        counts = Counter(address for item in server.recorder.received for address in item.recipients)
    assert 0 < partial < len(people)
    assert "email pending" in status.stdout  # handed back, not left in flight under a finished process
    assert set(counts) == set(people)
    assert [address for address, count in counts.items() if count > 1] == []
