"""EC2 access keys as the administrator makes them (occi-server credentials): a key id and a
secret in AWS's form for a user acting in one project, the secret shown once and kept
encrypted with the server's key, because the server must sign each request again to check it.
Their rows are identity's (occi.identity.access_keys).
"""

from __future__ import annotations

import secrets

from occi.identity import access_keys
from occi.identity.access_keys import AccessKey
from occi.identity.store import IdentityTx
from occi.inventory.secrets import Cipher

__all__ = ["PREFIX", "AccessKey", "create", "delete", "listed", "roles"]

#: access key ids: this prefix and 16 upper-case letters and digits, as AWS's look
PREFIX = "OCCI"
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

listed = access_keys.listed
delete = access_keys.delete
roles = access_keys.roles


def create(ident: IdentityTx, cipher: Cipher, user: str, project: str) -> tuple[AccessKey, str]:
    """A new access key of `user` acting in `project` (names); returns it and its secret,
    which is shown once."""
    access_key = PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(16))
    # 40 letters and digits (about 238 bits): as long as AWS's, and nothing a shell or a
    # script parsing the output has to quote
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    key = access_keys.add(ident, access_key, cipher.encrypt({"secret": secret}), user, project)
    return key, secret
