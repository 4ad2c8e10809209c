"""`broadcaster subscribers list|add|remove|import FILE|export`: the operator's view of the journal's
subscribers (who subscribed themselves, and whom an operator added). The subscribers file, if any, is not
touched: it stays the operator's own list, read beside these.

`import` reads the subscribers file's forms (one address per line, or CSV with email and components
columns) and `export` writes the CSV form, so the one can move into the other. An address on the
suppression list (it unsubscribed) is added but not mailed: only its owner, by confirming a new
subscription, lifts that."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from pathlib import Path

from broadcaster.cli.output import print_json, table, when
from broadcaster.domain.errors import InputError
from broadcaster.domain.subscriptions import Subscriber, endpoint_host, endpoint_id
from broadcaster.runtime import Runtime
from channels.subscriber_lists import SubscriberList, SubscribersUnavailable, parse_subscribers
from config.email import is_address

MAX_IMPORT = 1_000_000


async def run(args: argparse.Namespace, runtime: Runtime) -> int:
    action = {"list": _list, "add": _add, "remove": _remove, "import": _import, "export": _export}
    return await action[args.subscribers_command](args, runtime)


async def _list(args: argparse.Namespace, runtime: Runtime) -> int:
    if args.webhooks:
        return await _list_webhooks(args, runtime)
    everyone = await runtime.store.subscribers("email")
    suppressed = await runtime.store.suppressed()
    if args.json:
        print_json([_as_json(s, s.address in suppressed) for s in everyone])
        return 0
    rows = [
        [s.address, ", ".join(s.components) or "all", when(s.since), s.source, "yes" if s.address in suppressed else ""]
        for s in everyone
    ]
    table(rows, ["ADDRESS", "COMPONENTS", "SINCE", "SOURCE", "UNSUBSCRIBED"])
    print(f"{len(everyone):,} subscribers in the journal.", file=sys.stderr)
    return 0


def _as_json(subscriber: Subscriber, suppressed: bool) -> dict[str, object]:
    return {
        "address": subscriber.address,
        "components": list(subscriber.components),
        "since": subscriber.since,
        "source": subscriber.source,
        "unsubscribed": suppressed,
    }


async def _add(args: argparse.Namespace, runtime: Runtime) -> int:
    address = args.address.strip().lower()
    if not is_address(address):
        raise InputError(f"{args.address!r} is not an email address (e.g. name@example.com)", {"address": "invalid"})
    subscriber = Subscriber(
        kind="email", address=address, components=tuple(args.component), since=runtime.clock(), source="operator"
    )
    new = await runtime.store.save_subscribers([subscriber])
    print(f"{'Added' if new else 'Updated'} {address}.", file=sys.stderr)
    _warn_if_unsubscribed([address], await runtime.store.suppressed())
    return 0


async def _remove(args: argparse.Namespace, runtime: Runtime) -> int:
    given = args.address.strip()
    endpoint = next((s for s in await runtime.store.subscribers("webhook") if endpoint_id(s.address) == given), None)
    if endpoint is not None:
        await runtime.store.remove_subscriber("webhook", endpoint.address)
        print(f"Removed the webhook endpoint {given} at {endpoint_host(endpoint.address)}.", file=sys.stderr)
        return 0
    address = given.lower()
    if not await runtime.store.remove_subscriber("email", address):
        raise InputError(
            f"no subscriber {address!r} in the journal (`broadcaster subscribers list`, or list --webhooks)", {}
        )
    print(f"Removed {address}; it gets no more status email unless it subscribes again.", file=sys.stderr)
    return 0


async def _list_webhooks(args: argparse.Namespace, runtime: Runtime) -> int:
    """Endpoints by id and host only: the rest of a webhook URL is a secret (a token in its path)."""
    endpoints = await runtime.store.subscribers("webhook")
    if args.json:
        print_json(
            [
                {
                    "id": endpoint_id(s.address),
                    "host": endpoint_host(s.address),
                    "components": list(s.components),
                    "since": s.since,
                    "source": s.source,
                }
                for s in endpoints
            ]
        )
        return 0
    rows = [
        [endpoint_id(s.address), endpoint_host(s.address), ", ".join(s.components) or "all", when(s.since)]
        for s in endpoints
    ]
    table(rows, ["ID", "ENDPOINT", "COMPONENTS", "SINCE"])
    print(f"{len(endpoints):,} webhook endpoints in the journal.", file=sys.stderr)
    return 0


async def _import(args: argparse.Namespace, runtime: Runtime) -> int:
    path = Path(args.file)
    listed = await asyncio.to_thread(_read_list, path)
    if listed.problems and not args.skip_bad_lines:
        for problem in listed.problems[:20]:
            print(f"{path}: {problem}", file=sys.stderr)
        more = f" (and {len(listed.problems) - 20:,} more)" if len(listed.problems) > 20 else ""
        raise InputError(
            f"{path} has {_lines(len(listed.problems))}{more}; nothing was imported. Fix them, or run again "
            "with --skip-bad-lines to import the rest",
            {"file": str(path)},
        )
    now = runtime.clock()
    imported = [
        Subscriber(
            kind="email", address=entry.key, components=tuple(sorted(entry.components)), since=now, source="import"
        )
        for entry in listed.subscribers
    ]
    added = await runtime.store.save_subscribers(imported)
    updated = len(listed.subscribers) - added
    print(f"Imported {len(listed.subscribers):,} subscribers ({added:,} new, {updated:,} updated).", file=sys.stderr)
    if listed.problems:
        print(f"Skipped {_lines(len(listed.problems))}.", file=sys.stderr)
    _warn_if_unsubscribed([s.key for s in listed.subscribers], await runtime.store.suppressed())
    return 0


def _read_list(path: Path) -> SubscriberList:
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as lines:
            return parse_subscribers(lines, limit=MAX_IMPORT)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}", {"file": str(path)}) from None
    except SubscribersUnavailable as exc:
        raise InputError(f"{path}: {exc}", {"file": str(path)}) from None


def _lines(count: int) -> str:
    return f"{count:,} bad line{'s' if count != 1 else ''}"


async def _export(args: argparse.Namespace, runtime: Runtime) -> int:
    everyone = await runtime.store.subscribers("email")
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["email", "components"])
    writer.writerows([s.address, ";".join(s.components)] for s in everyone)
    print(f"Exported {len(everyone):,} subscribers.", file=sys.stderr)
    return 0


def _warn_if_unsubscribed(addresses: list[str], suppressed: frozenset[str]) -> None:
    held = [address for address in addresses if address in suppressed]
    if held:
        print(
            f"{len(held):,} of them unsubscribed earlier (first: {held[0]}) and stay unmailed until they "
            "subscribe again themselves.",
            file=sys.stderr,
        )
