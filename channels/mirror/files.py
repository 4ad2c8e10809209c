"""Writing the mirror into a directory so that a reader never sees a half-written file.

Each file is written to a temporary name in its own directory, flushed to disk, then renamed over the
old one (rename is atomic within a file system). Unchanged files are left alone, so caches and CDNs
keep their copies and a render that changes nothing writes nothing."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path


def write_tree(directory: Path, files: Mapping[str, bytes]) -> int:
    """Write `files` (relative path -> content) under `directory`, in the mapping's order. Returns how
    many files changed. Raises OSError."""
    changed = 0
    touched_dirs: set[Path] = set()
    for relative, content in files.items():
        path = directory / relative
        if _same(path, content):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, content)
        touched_dirs.add(path.parent)
        changed += 1
    for parent in touched_dirs:
        _sync_directory(parent)
    return changed


def write_atomically(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(temporary, "xb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # readable by the web server that serves the mirror
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def probe(directory: Path) -> None:
    """Prove `directory` can take an atomic write, leaving nothing behind. Raises OSError."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f".broadcaster-check-{secrets.token_hex(4)}"
    write_atomically(target, b"ok\n")
    target.unlink()


def _same(path: Path, content: bytes) -> bool:
    try:
        if path.stat().st_size != len(content):
            return False
        return path.read_bytes() == content
    except OSError:
        return False


def _sync_directory(directory: Path) -> None:
    # The renames are only durable once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def site_paths(directory: Path) -> set[str]:
    """The site's pages a directory holds, as site paths ("index.html", "incidents/ID.html"): what the
    files an update writes may link to. Hidden files (a write in progress) are not pages."""
    found: set[str] = set()
    for folder in (directory, directory / "incidents"):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            for entry in os.scandir(folder):
                if entry.name.endswith(".html") and not entry.name.startswith("."):
                    found.add(entry.name if folder == directory else f"incidents/{entry.name}")
    return found
