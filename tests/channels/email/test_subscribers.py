"""The subscribers file and the suppression list: parsing, validation with line numbers, re-reading, durability."""

from __future__ import annotations

from pathlib import Path

import pytest

from channels.email.subscribers import SubscriberFile
from channels.email.suppression import SuppressionList
from channels.subscriber_lists import Subscriber, SubscribersUnavailable, parse_subscribers


def test_one_address_per_line_with_blanks_and_comments() -> None:
    """The plain form: every valid line is a subscriber to every component."""
    listed = parse_subscribers(["# status list\n", "ann@example.org\n", "\n", "  bob@example.com  \r\n"], limit=10)
    assert listed.subscribers == (
        Subscriber("ann@example.org", frozenset()),
        Subscriber("bob@example.com", frozenset()),
    )
    assert listed.problems == ()


def test_csv_with_components() -> None:
    """CSV with a header: ';'-separated components (case-folded), an empty cell for all, extra columns ignored."""
    lines = ["name,Email,Components\n", "Ann,ann@example.org,API; Dashboard\n", 'Bob,bob@example.org,""\n']
    listed = parse_subscribers(lines, limit=10)
    assert listed.subscribers == (
        Subscriber("ann@example.org", frozenset({"api", "dashboard"})),
        Subscriber("bob@example.org", frozenset()),
    )
    ann, bob = listed.subscribers
    assert ann.wants({"api"}) and not ann.wants({"website"})
    assert ann.wants(set()), "an incident naming no component is about the whole service: everyone hears of it"
    assert bob.wants(set()) and bob.wants({"website"})


def test_bad_lines_are_reported_with_their_numbers_and_the_rest_used() -> None:
    """Invalid addresses, non-ASCII, header injection and duplicates are skipped, each with its line number."""
    lines = [
        "ann@example.org",
        "no-at-sign",
        "jörg@example.de",
        "eve@example.org\r\nBcc: x@example.org",
        "ANN@example.org",
        "bob@example.org",
    ]
    listed = parse_subscribers(lines, limit=10)
    assert [s.address for s in listed.subscribers] == ["ann@example.org", "bob@example.org"]
    assert listed.problems == (
        "line 2: 'no-at-sign' is not an email address",
        "line 3: 'jörg@example.de' is not an email address",
        "line 4: 'eve@example.org\\r\\nBcc: x@example.org' is not an email address",
        "line 5: ANN@example.org is already listed on line 1",
    )


def test_a_file_over_the_limit_is_refused_not_truncated() -> None:
    """Mailing a silently truncated list would be worse than not mailing."""
    with pytest.raises(SubscribersUnavailable, match="more than 2 subscribers"):
        parse_subscribers(["a@example.org", "b@example.org", "c@example.org"], limit=2)


async def test_the_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    """Same modification time and size: the cached list; a rewrite: the new one."""
    path = tmp_path / "subscribers.txt"
    path.write_text("ann@example.org\n")
    subscribers = SubscriberFile(path, limit=10)
    first = await subscribers.load()
    assert await subscribers.load() is first
    path.write_text("bob@example.org\ncat@example.org\n")
    assert [s.address for s in (await subscribers.load()).subscribers] == ["bob@example.org", "cat@example.org"]


async def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    """The error names the file and why."""
    with pytest.raises(SubscribersUnavailable, match=r"cannot read subscribers file .*gone.txt: No such file"):
        await SubscriberFile(tmp_path / "gone.txt", limit=10).load()


async def test_suppressions_survive_a_restart(tmp_path: Path) -> None:
    """Added entries are on disk before add() returns; a new instance (a restart) reads them back."""
    path = tmp_path / "data" / "email-suppressed.txt"
    await SuppressionList(path).add({"Ann@Example.org": "550 5.1.1 No such\nuser"})
    assert await SuppressionList(path).load() == frozenset({"ann@example.org"})
    assert path.read_text().startswith("Ann@Example.org\t") and path.read_text().endswith("\t550 5.1.1 No such user\n")


async def test_operators_can_list_unsubscribes_by_hand(tmp_path: Path) -> None:
    """Address first, a note after it, comments ignored; an edit is picked up at the next load."""
    path = tmp_path / "email-suppressed.txt"
    suppressions = SuppressionList(path)
    assert await suppressions.load() == frozenset()
    path.write_text("# unsubscribed by request\nbob@example.org  asked on 2024-05-01\n\nnot an address\n")
    assert await suppressions.load() == frozenset({"bob@example.org"})
