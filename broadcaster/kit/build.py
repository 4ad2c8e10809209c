"""`broadcaster kit DIR` and `kit --refresh DIR`, step by step.

A new kit: its configuration, the journal's snapshot, wheels, the venv, the runbook. A refresh: the
configuration, the snapshot and the runbook again, leaving the venv as it is unless it could not open the
new journal (its schema version, which kit.json records, is older than the journal's): the wheels and the
venv are then built again, from the running code. A new kit that fails half-way
is removed, so the same command can simply be run again."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from broadcaster.kit import journal, runbook, venv
from broadcaster.kit.settings import DATA_DIR, JOURNAL, SUPPRESSED, Copy, KitSettings, kit_settings
from broadcaster.kit.steps import BAD_INPUT, KitError, Progress
from broadcaster.kit.toml import document
from broadcaster.store.sqlite.importing import suppression_entries
from broadcaster.store.sqlite.schema import SCHEMA_VERSION
from config import CHANNEL_NAMES, Settings
from config.publish import target_name
from config.secrets import mask_url

CONFIG = "broadcaster.toml"
SECRETS_EXAMPLE = "secrets.env.example"
RUNBOOK = "RUNBOOK.md"


@dataclass(frozen=True, slots=True)
class KitRequest:
    directory: Path
    refresh: bool = False
    from_url: str | None = None
    token: str | None = None
    """The API token for `from_url`, read from the variable --token-env names."""


def build(settings: Settings, request: KitRequest, progress: Progress | None = None) -> Progress:
    """Make or refresh the kit; raises KitError (the progress then names the failed step)."""
    kit = request.directory.absolute()
    previous = _check_directory(kit, refresh=request.refresh)
    progress = progress or Progress(total=3 if request.refresh else 5)
    made_dir = not kit.exists()
    try:
        kit.mkdir(mode=0o700, parents=True, exist_ok=True)
        kit.chmod(0o700)  # the journal holds subscribers' addresses and webhook secrets: the owner's only
        _build(settings, request, kit, previous, progress)
    except BaseException:
        if not request.refresh:
            _undo(kit, made_dir)
        raise
    return progress


def _build(
    settings: Settings, request: KitRequest, kit: Path, previous: dict[str, object] | None, progress: Progress
) -> None:
    with progress.step(f"configuration {kit / CONFIG}, without secrets") as said:
        configured = kit_settings(settings, kit, from_service=request.from_url is not None)
        before = runbook.example_variables(kit / SECRETS_EXAMPLE) if previous else None
        _write_configuration(configured, kit)
        said.append(f"{len(configured.variables)} secrets as environment references")
        if before is not None:
            said.append(_changed_variables(before, [variable.name for variable in configured.variables]))
    origin = f" from {mask_url(request.from_url)}" if request.from_url else ""
    with progress.step(f"snapshot of the journal{origin}") as said:
        snapshot = _snapshot(settings, request, kit)
        said.append(snapshot.summary)
    venv_schema = venv.schema_version(kit / "venv") if request.refresh else None
    if not request.refresh or venv_schema is None or venv_schema < snapshot.schema:
        if request.refresh:  # the kit's venv could not open the new journal: it is built anew from this code
            progress.total += 2
        with progress.step(f"wheels of the broadcaster and its dependencies into {kit / 'wheels'}") as said:
            shutil.rmtree(kit / "wheels", ignore_errors=True)
            said.append(f"{venv.build_wheels(kit / 'wheels', leave_out=kit)} wheels")
        with progress.step(f"virtualenv {kit / 'venv'}, installed from the wheels alone") as said:
            said.append(venv.make_venv(kit / "venv", kit / "wheels"))
        venv_schema = SCHEMA_VERSION
    with progress.step(f"runbook {kit / RUNBOOK}"):
        channels = [name for name in CHANNEL_NAMES if getattr(settings, name).enabled]
        built_at = str(previous["built_at"]) if previous else None
        _write(kit / RUNBOOK, runbook.runbook(kit, snapshot, channels, configured.variables))
        _write(kit / runbook.MARKER, runbook.marker(snapshot, built_at=built_at, venv_schema=venv_schema))


def _changed_variables(before: list[str], after: list[str]) -> str:
    """What a refresh changed in the secrets to fill in: the commander must add the new ones."""
    added = [name for name in after if name not in before]
    dropped = [name for name in before if name not in after]
    if not added and not dropped:
        return "(the same variables as before)"
    return (
        f"(new, to fill in: {', '.join(added) or 'none'}; no longer used: {', '.join(dropped) or 'none'}; "
        f"see {SECRETS_EXAMPLE})"
    )


def _check_directory(kit: Path, *, refresh: bool) -> dict[str, object] | None:
    """The kit's marker when refreshing; KitError (bad input) when `kit` cannot be made or refreshed."""
    if kit.exists() and not kit.is_dir():
        raise KitError(f"{kit} is not a directory", code=BAD_INPUT)
    marker = runbook.read_marker(kit)
    if refresh:
        if marker is None:
            raise KitError(
                f"{kit} is not a kit (no {runbook.MARKER}); make one with `broadcaster kit {kit}`", code=BAD_INPUT
            )
        return marker
    if marker is not None:
        raise KitError(f"{kit} is a kit already; `broadcaster kit --refresh {kit}` renews it", code=BAD_INPUT)
    if kit.exists() and any(kit.iterdir()):
        raise KitError(f"{kit} is neither empty nor a kit; give a new or empty directory", code=BAD_INPUT)
    return None


def _write_configuration(configured: KitSettings, kit: Path) -> None:
    (kit / DATA_DIR).mkdir(mode=0o700, exist_ok=True)
    for copy in configured.copies:
        _carry(copy, kit)
    comment = (
        "The broadcaster fallback kit's configuration, written by `broadcaster kit`; `kit --refresh` rewrites it.\n"
        f"Secrets are environment references, ${{NAME}}: {SECRETS_EXAMPLE} lists them. See {RUNBOOK}."
    )
    _write(kit / CONFIG, document(configured.data, comment=comment))
    _write(kit / SECRETS_EXAMPLE, runbook.secrets_example(configured.variables))


def _carry(copy: Copy, kit: Path) -> None:
    """Copy a file the kit needs. A missing suppression file is an empty list; the kit's own additions to
    it (hard bounces of a blackout send) are kept."""
    target = kit / copy.target
    if copy.target == SUPPRESSED:
        kept = target.read_text() if target.exists() else ""
        given = copy.source.read_text() if copy.source.exists() else ""
        merged = merge_suppressions(given, kept)
        if merged:
            _write(target, merged)
        return
    try:
        _write(target, copy.source.read_bytes())
    except FileNotFoundError:
        raise KitError(f"{copy.source} (named in the configuration) does not exist", code=BAD_INPUT) from None


def merge_suppressions(given: str, kept: str) -> str:
    """The service's suppression file (`given`) followed by the kit's own entries (`kept`) for addresses it
    does not list, compared as the email channel compares them (the address, lower-cased, whatever follows
    it); one entry a line, the last ending with a newline."""
    lines = given.splitlines()
    known = set(suppression_entries(lines))
    for line in kept.splitlines():
        found = suppression_entries([line])
        if found and not found.keys() <= known:
            lines.append(line)
            known |= found.keys()
    return "".join(f"{line}\n" for line in lines)


def _snapshot(settings: Settings, request: KitRequest, kit: Path) -> runbook.Snapshot:
    scratch = journal.scratch_path(kit / DATA_DIR)
    taken_at = datetime.now(UTC)
    try:
        if request.from_url is None:
            targets = [target_name(target) for target in settings.mirror.publish]
            journal.snapshot_local(settings.store_url, scratch, publish_targets=targets)
            local = settings.store_url.startswith("sqlite:")
            source = "the local journal" if local else f"the journal at {mask_url(settings.store_url, keep_path=True)}"
        else:
            journal.snapshot_remote(request.from_url, request.token or "", scratch, settings.network)
            source = mask_url(journal.snapshot_url(request.from_url), keep_path=True)
        summary = journal.check_journal(scratch)
        schema = journal.schema_version(scratch)
        if schema > SCHEMA_VERSION:
            raise KitError(
                f"the journal has schema version {schema}, newer than this broadcaster's ({SCHEMA_VERSION}), "
                "so the kit could not open it: upgrade the broadcaster here and run the kit again"
            )
        journal.mark_manifests_restored(scratch)
        kept = journal.put_in_place(scratch, kit / JOURNAL)
        (kit / JOURNAL).chmod(0o600)
    finally:
        scratch.unlink(missing_ok=True)
    if kept is not None:
        summary += f"; the kit's previous journal, with updates sent from the kit, is kept as {kept.name}"
    return runbook.Snapshot(source=source, summary=summary, taken_at=taken_at, schema=schema)


def _write(path: Path, content: str | bytes) -> None:
    """Write `path` whole or not at all: a refresh interrupted half-way leaves the previous file."""
    draft = path.with_name(f".{path.name}.draft")
    if isinstance(content, str):
        draft.write_text(content)
    else:
        draft.write_bytes(content)
    os.replace(draft, path)


def _undo(kit: Path, made_dir: bool) -> None:
    """Remove what a failed new kit left: the directory, if it was made here, else its contents (it was
    empty before)."""
    if made_dir:
        shutil.rmtree(kit, ignore_errors=True)
        return
    for entry in kit.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
