"""API tokens: `occi_<id>_<secret>`, a public id to find the row and 32 random bytes of secret
of which only the SHA-256 is kept (a slow hash adds nothing to a high-entropy secret).
Pure functions: no SQL, no HTTP."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "occi"
SECRET_BYTES = 32
ID_BYTES = 8


@dataclass(frozen=True)
class NewToken:
    id: str
    #: the whole token, to show once and never store
    token: str
    #: what is stored
    hash: str


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def make_token() -> NewToken:
    token_id = secrets.token_hex(ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return NewToken(token_id, f"{PREFIX}_{token_id}_{secret}", secret_hash(secret))


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a string shaped like a token, else None."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def secret_matches(stored_hash: str, secret: str) -> bool:
    """Constant-time comparison of the secret's hash with the stored one."""
    return hmac.compare_digest(stored_hash.encode("ascii"), secret_hash(secret).encode("ascii"))
