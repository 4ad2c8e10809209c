"""Secrets the broadcaster makes for itself when none is configured (the unsubscribe links' and the form's
session signing keys), kept in the data directory so that every process sharing it agrees on them."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

KEY_BYTES = 32


def stored_secret(data_dir: Path, name: str) -> bytes:
    """The secret in <data_dir>/<name>.key, made the first time (32 random bytes, hex-encoded), readable by
    its owner only. Two processes making it at once agree: each writes a file of its own and links it into
    place, which only one can do; the other reads the winner's, complete by then."""
    path = data_dir / f"{name}.key"
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    data_dir.mkdir(parents=True, exist_ok=True)
    draft = data_dir / f".{name}.key.{secrets.token_hex(6)}"
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(KEY_BYTES) + "\n")
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text().strip()
    if len(text) < 2 * KEY_BYTES:
        raise ValueError(f"{path} is damaged (too short to be a key); remove it and a new one is made")
    return text.encode()
