"""Users' passwords, as argon2id hashes in [auth] users (argon2-cffi's defaults, RFC 9106's second
recommended parameters)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
DUMMY_HASH = _HASHER.hash("a password nobody has")
"""Checked for an unknown user too, so the time a refusal takes does not tell whether the user exists."""


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash or DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False
