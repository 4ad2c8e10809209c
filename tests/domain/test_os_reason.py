"""What a failed connection or bind is said to be: the system's few words, not the address again."""

from __future__ import annotations

import errno
import os
import socket
import ssl

from broadcaster.domain.errors import os_reason


def test_an_errno_is_said_in_the_systems_words() -> None:
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 1)")
    assert os_reason(refused) == os.strerror(errno.ECONNREFUSED)


def test_a_name_that_does_not_resolve_is_said_in_the_resolvers_words() -> None:
    """Its errno is negative, which os.strerror knows nothing of ("Unknown error -2")."""
    unresolved = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert os_reason(unresolved) == "Name or service not known"


def test_a_tls_failure_is_said_in_tls_words() -> None:
    """Its code is TLS's, not an errno (1 would read "Operation not permitted")."""
    refused = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert "certificate verify failed" in os_reason(refused)
