"""A cluster's connection settings, encrypted at rest (Fernet: AES-128-CBC with HMAC-SHA256).

The key comes from the `secret_key` setting (OCCI_SECRET_KEY), any text of 16 characters or
more, the same on every server sharing a database; when it is unset, from a key file (the
`secret_key_file` setting, else `occi-secret-key` beside the SQLite database, else in the
working directory), generated on first use: created exclusively (O_EXCL), readable by its owner
only. A row encrypted under another key is refused with SecretKeyError, a message naming where
the key came from, never a traceback. Touches the file system and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets as random
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from occi.errors import OcciError
from occi.settings import Settings

FILE_NAME = "occi-secret-key"
#: shortest secret_key accepted (a key file holds 43 random characters)
MIN_KEY_LENGTH = 16
#: what a settings key contains when its value is a secret (masked in every output)
SECRET_WORDS = ("password", "secret", "token", "key")
MASK = "********"


class SecretKeyError(OcciError):
    """The server's secret key cannot decrypt what is stored, or cannot be had at all."""

    code = "secret_key"


def key_path(settings: Settings) -> Path:
    """The key file: `secret_key_file`, else beside the SQLite database file, else (PostgreSQL,
    an in-memory database) the working directory."""
    from occi.identity.first_start import beside_database

    if settings.secret_key_file:
        return Path(settings.secret_key_file).expanduser()
    return beside_database(settings.database_url, FILE_NAME)


def _read_or_make(path: Path) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass  # made before, or by a server starting beside this one
    except OSError as exc:
        raise SecretKeyError(
            f"cannot create the secret key file {path}: {exc.strerror or exc} (set "
            "secret_key_file to a writable path, or OCCI_SECRET_KEY)"
        ) from None
    else:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, (random.token_urlsafe(32) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise SecretKeyError(f"cannot read the secret key file {path}: {exc}") from None
    if not text:  # another process is between its create and its write: read again
        import time

        time.sleep(0.2)
        text = path.read_text().strip()
    return text


class Cipher:
    """Encrypts and decrypts settings documents with one key; `source` says where the key
    came from (for messages)."""

    def __init__(self, secret: str, source: str):
        if len(secret) < MIN_KEY_LENGTH:
            raise SecretKeyError(
                f"the secret key from {source} is too short: give {MIN_KEY_LENGTH} characters "
                "or more"
            )
        digest = hashlib.sha256(b"occi cluster settings\0" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self.source = source

    @classmethod
    def from_settings(cls, settings: Settings) -> Cipher:
        if settings.secret_key:
            return cls(settings.secret_key, "the secret_key setting (OCCI_SECRET_KEY)")
        path = key_path(settings)
        return cls(_read_or_make(path), f"the key file {path}")

    def encrypt(self, doc: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(doc, sort_keys=True).encode()).decode()

    def decrypt(self, token: str, what: str) -> dict[str, str]:
        """The settings of `what` (a cluster, for the message)."""
        try:
            doc = json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError):
            raise SecretKeyError(
                f"the settings of {what} cannot be decrypted with the secret key from "
                f"{self.source}: they were encrypted under another key; give every server "
                "sharing this database the same OCCI_SECRET_KEY"
            ) from None
        return {str(k): str(v) for k, v in doc.items()}


def is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def masked(doc: dict[str, Any]) -> dict[str, Any]:
    """The settings as they may be shown: secrets masked, and a password inside a URL too."""
    out: dict[str, Any] = {}
    for key, value in sorted(doc.items()):
        if is_secret(key):
            out[key] = MASK
        elif isinstance(value, str) and "://" in value and "@" in value:
            out[key] = _hide_url_password(value)
        else:
            out[key] = value
    return out


def _hide_url_password(value: str) -> str:
    scheme, _, rest = value.partition("://")
    userinfo, at, host = rest.partition("@")
    if not at or "/" in userinfo or ":" not in userinfo:
        return value
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:{MASK}@{host}"
