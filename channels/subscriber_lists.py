"""Lists of subscribers as people write them: the operator's subscribers file (read by the email channel)
and what `broadcaster subscribers import` reads. Two forms, told apart by the first line that is not blank
or a comment (#):
- one address per line;
- CSV with a header row naming an `email` column and optionally a `components` column, whose cells are
  ';'-separated component names (a subscriber with components only gets incidents touching one of them,
  and those naming no component; an empty cell means every incident). Other columns are ignored.

A bad line never stops the others: it is reported with its line number and skipped."""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from broadcaster.domain.subscriptions import follows
from config.email import is_address


class SubscribersUnavailable(Exception):
    """The file cannot be used at all (missing, unreadable, too large)."""


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One subscriber: an address as written in the file, and the components followed."""

    address: str
    components: frozenset[str]
    """Case-folded component names; empty: every incident."""

    @property
    def key(self) -> str:
        """The address as compared against progress and the suppression list."""
        return self.address.lower()

    def wants(self, affected: Collection[str]) -> bool:
        """True when this subscriber follows every component or one of `affected` (case-folded names), or
        the incident names none."""
        return follows(self.components, affected)


@dataclass(frozen=True, slots=True)
class SubscriberList:
    """The file's usable subscribers, in file order, and what was wrong with the rest."""

    subscribers: tuple[Subscriber, ...]
    problems: tuple[str, ...]
    """One "line N: why" per line that was skipped."""


def parse_subscribers(lines: Iterable[str], *, limit: int) -> SubscriberList:
    """Parse the file's lines (either form). More than `limit` subscribers raises SubscribersUnavailable."""
    subscribers: list[Subscriber] = []
    problems: list[str] = []
    first_seen: dict[str, int] = {}
    columns: tuple[int, int | None] | None = None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if columns is None and not first_seen and not problems:
            columns = _header_columns(line)
            if columns is not None:
                continue
        address, components, problem = _parse_line(line, columns)
        if problem is None and address.lower() in first_seen:
            problem = f"{address} is already listed on line {first_seen[address.lower()]}"
        if problem is not None:
            problems.append(f"line {number}: {problem}")
            continue
        first_seen[address.lower()] = number
        subscribers.append(Subscriber(address, components))
        if len(subscribers) > limit:
            raise SubscribersUnavailable(f"more than {limit:,} subscribers; raise [email] max_subscribers")
    return SubscriberList(tuple(subscribers), tuple(problems))


def _header_columns(line: str) -> tuple[int, int | None] | None:
    """(email column, components column) when `line` is a CSV header naming an email column, else None."""
    names = [cell.strip().lower() for cell in next(csv.reader([line]))]
    if "email" not in names:
        return None
    return names.index("email"), names.index("components") if "components" in names else None


def _parse_line(line: str, columns: tuple[int, int | None] | None) -> tuple[str, frozenset[str], str | None]:
    if columns is None:
        address, components = line, frozenset[str]()
    else:
        cells = next(csv.reader([line]), [])
        email_column, components_column = columns
        if len(cells) <= email_column:
            return "", frozenset(), "no email column"
        address = cells[email_column].strip()
        cell = cells[components_column] if components_column is not None and components_column < len(cells) else ""
        components = frozenset(name.strip().casefold() for name in cell.split(";") if name.strip())
    if not is_address(address):
        shown = address if len(address) <= 80 else address[:77] + "..."
        return address, components, f"{shown!r} is not an email address"
    return address, components, None
