"""The kit's texts: RUNBOOK.md (one page for the commander), secrets.env.example (the variables to fill in)
and kit.json (what marks a directory as a kit, and when its snapshot was taken)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from broadcaster import __version__
from broadcaster.kit.settings import SecretVariable

MARKER: Final = "kit.json"
KIND: Final = "broadcaster-kit"


@dataclass(frozen=True, slots=True)
class Snapshot:
    source: str
    """"the local journal", the Redis journal's (masked) URL, or the service's (masked) address."""
    summary: str
    taken_at: datetime
    schema: int
    """The journal's schema version (PRAGMA user_version)."""


def read_marker(kit: Path) -> dict[str, Any] | None:
    """What kit.json says, or None when `kit` is no kit."""
    try:
        marker = json.loads((kit / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("kind") == KIND else None


def marker(snapshot: Snapshot, *, built_at: str | None, venv_schema: int | None) -> str:
    taken = snapshot.taken_at.isoformat(timespec="seconds")
    record = {
        "kind": KIND,
        "broadcaster": __version__,
        "built_at": built_at or taken,
        "venv_schema": venv_schema,
        "snapshot": {
            "taken_at": taken,
            "source": snapshot.source,
            "holds": snapshot.summary,
            "schema": snapshot.schema,
        },
    }
    return json.dumps(record, indent=2) + "\n"


def example_variables(path: Path) -> list[str]:
    """The variable names a secrets.env.example lists (none when there is none)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [line.removesuffix("=") for line in lines if line.endswith("=") and not line.startswith("#")]


def secrets_example(variables: list[SecretVariable]) -> str:
    lines = [
        "# The secrets broadcaster.toml refers to as ${NAME}. Fill them from the password manager into the",
        "# environment of the shell you post from; never write the values into the kit.",
        "# A variable left unset or empty stops every command (exit 2) naming it and its key.",
    ]
    if not variables:
        lines.append("# (none: this configuration holds no secret)")
    for variable in variables:
        hint = f" ({variable.hint})" if variable.hint else ""
        lines += ["", f"# {variable.key}{hint}", f"{variable.name}="]
    return "\n".join(lines) + "\n"


def runbook(kit: Path, snapshot: Snapshot, channels: list[str], variables: list[SecretVariable]) -> str:
    bin_ = "venv/bin/broadcaster"
    taken = snapshot.taken_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    secrets = (
        f"{len(variables)} secrets, listed with the key each fills in `secrets.env.example`"
        if variables
        else "no secret (secrets.env.example is empty)"
    )
    return f"""# Broadcaster fallback kit

Snapshot of the journal: {taken}, from {snapshot.source} ({snapshot.summary}).
Channels: {", ".join(channels) or "none"}.

## When to use it
The platform, or the broadcaster service on it, is down or unreachable, and customers must still hear from
you. This kit needs nothing of the platform: no service, no Redis, no DNS for the pinned hosts. It knows the
incidents, subscribers, unsubscribes and X threads as of the snapshot above.

## 1. Set the secrets
`broadcaster.toml` holds {secrets}. Export each from the password manager in the shell you post from, e.g.
`export NAME='value'`, or fill a copy of the example kept outside the kit and load it with
`set -a; . ~/secure/secrets.env; set +a`. A missing one stops every command with exit 2, naming it.

## 2. Post
```sh
cd {kit}
{bin_} status                                   # incidents known to the snapshot, with their ids
{bin_} send --title "Checkout errors" --status investigating --impact major --message "Some payments fail."
{bin_} send --incident ID --status identified --message "A bad deploy; rolling back."
{bin_} send --incident ID --status resolved --message "Payments work again."
```
Updating an incident from before the outage continues it: its X thread, its page with the whole history.
Exit 0: delivered everywhere. Exit 3: something is still pending or failed: `{bin_} retry` (and
`{bin_} retry --failed` for fresh attempts); `{bin_} status ID` shows every delivery and error.

## Where things are
- The status site: `{kit}/public` (also published to the configured `[[mirror.publish]]` targets, if any).
  `{bin_} render` rebuilds it from the journal.
- The journal: `{kit}/var/broadcaster.db`; subscribers and suppressions: `{kit}/var`. The journal holds
  subscribers' addresses and webhook secrets: the kit directory is yours alone (mode 0700, the journal
  0600); keep it so, on an encrypted disk, and copy it nowhere else.
- After the outage the service does not know what was sent from here: post the next update through the
  service (same incident id), and keep this journal for the record.

## Test it monthly
With the secrets set: `{bin_} check` (every channel reachable, nothing sent) and `{bin_} drill` (a marked
test update to the drill targets only).

## Keep it current
On this laptop, where the service's configuration is: `broadcaster kit --refresh {kit}` (or
`broadcaster kit --refresh {kit} --from https://SERVICE --token-env TOKEN_VARIABLE`) renews the snapshot and
the configuration. To rebuild the venv without a network:
```sh
rm -rf venv && python3 -m venv venv
venv/bin/pip install --no-index --find-links wheels -c wheels/constraints.txt broadcaster
```
"""
