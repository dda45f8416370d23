"""Password hashes: argon2id (argon2-cffi), verified in constant time, rehashed when the
parameters change. Pure functions: no SQL, no HTTP."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: argon2-cffi's defaults (RFC 9106's low-memory profile: t=3, m=64 MiB, p=4), Type.ID
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash with its salt and parameters in it ($argon2id$v=19$m=...,t=...,p=...$)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the hash; False for a malformed hash, never an exception."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (rehash at next login)."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
