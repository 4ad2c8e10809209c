"""Errors the broadcaster reports to people; each maps to one CLI exit code and one HTTP status."""

from __future__ import annotations

import os
import ssl


class BroadcasterError(Exception):
    """Base of the errors with a message fit to show an incident commander as is."""


class InputError(BroadcasterError):
    """The submitted update (or command) is not acceptable; nothing was journaled. CLI exit 2, HTTP 4xx.

    `fields` maps field names to what is wrong with each, for forms and the JSON API."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


class NotFoundError(InputError):
    """The named incident, update or channel does not exist."""


class ConflictError(InputError):
    """The request contradicts what was accepted before (an idempotency key reused for other content).
    CLI exit 2, HTTP 409."""


class StoreError(BroadcasterError):
    """The journal cannot be opened or written."""


class JournalWriteError(StoreError):
    """The journal is there but cannot take a write: the disk is full, a write failed (an I/O error, a
    file-size limit). Not a mistake in the input or the configuration: CLI exit 4, and nothing that was
    being written was acknowledged."""


class StoreUnreachable(StoreError):
    """The journal's server did not answer (refused, reset, timed out): nothing was read, and a write was not
    acknowledged (CLI exit 4). A store with a local fallback (store.failover) goes on from its replica."""


class JournalUnreachable(JournalWriteError, StoreUnreachable):
    """A write the journal's server did not acknowledge because it could not be reached."""


class LeaseLost(StoreError):
    """A lane wrote for a delivery it no longer holds (its lease ran out and another process took it): what
    it does next must stop, since the delivery is someone else's now."""


def os_reason(error: OSError) -> str:
    """What the system says of `error`, without the address asyncio and redis-py repeat around it: its errno's
    text, or the resolver's (a host name that does not resolve has a negative errno), or TLS's (whose codes
    are no errno)."""
    if error.errno and error.errno > 0 and not isinstance(error, ssl.SSLError):
        return os.strerror(error.errno)
    return error.strerror or str(error) or type(error).__name__
